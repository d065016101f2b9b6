"""A CRAN-like package repository for tests: a tiny R package built with `R CMD build`, indexed
with `tools::write_PACKAGES`, served over HTTP by a thread of the test on an address the test
made (the gateway of its own Docker network: build steps reach the host only there, and only
because minibinder lets the configured repository's address and port through).

The first path segment is the snapshot date (`/<date>/src/contrib/PACKAGES`): every date serves
the same packages, and the paths asked for are recorded, so a test sees which date was used.
"""

from __future__ import annotations

import functools
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import docker as docker_sdk

HELLO = 'hello <- function() cat("hello from tinypkg\\n")\n'


def build_tinypkg(folder: Path, version: str = "0.1.0") -> Path:
    """`R CMD build` a package with one function, `hello()`; the source tarball's path."""
    source = folder / "tinypkg"
    (source / "R").mkdir(parents=True)
    (source / "DESCRIPTION").write_text(
        f"Package: tinypkg\nVersion: {version}\nTitle: A Tiny Test Package\n"
        "Description: Says hello, for minibinder's tests.\nLicense: MIT + file LICENSE\n"
        'Authors@R: person("Test", "Author", email = "t@example.org", role = c("aut", "cre"))\n'
        "Encoding: UTF-8\n"
    )
    (source / "LICENSE").write_text("YEAR: 2026\nCOPYRIGHT HOLDER: minibinder tests\n")
    (source / "NAMESPACE").write_text("export(hello)\n")
    (source / "R" / "hello.R").write_text(HELLO)
    subprocess.run(
        ["R", "CMD", "build", "--no-manual", "--no-build-vignettes", "tinypkg"],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    return folder / f"tinypkg_{version}.tar.gz"


class CranRepository:
    def __init__(self, folder: Path):
        self.folder = folder
        self.requested: list[str] = []
        contrib = folder / "src" / "contrib"
        contrib.mkdir(parents=True)
        tarball = build_tinypkg(folder / "build")
        tarball.rename(contrib / tarball.name)
        subprocess.run(
            ["Rscript", "-e", 'tools::write_PACKAGES("src/contrib", type = "source")'],
            cwd=folder,
            check=True,
            capture_output=True,
        )
        self._network = None
        self._server: ThreadingHTTPServer | None = None

    def __enter__(self) -> CranRepository:
        client = docker_sdk.from_env()
        # Not "mbtest-": a test run ending sweeps those, and this one may be another run's.
        self._network = client.networks.create(f"mbcran-{id(self) % 10**6}", driver="bridge")
        self._network.reload()
        gateway = self._network.attrs["IPAM"]["Config"][0]["Gateway"]
        requested = self.requested

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def translate_path(self, path):
                date, _, rest = path.lstrip("/").partition("/")
                requested.append(path)
                return super().translate_path("/" + rest)

        self._server = ThreadingHTTPServer(
            (gateway, 0), functools.partial(Handler, directory=str(self.folder))
        )
        self.host, self.port = gateway, self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        """The repository URL as a setting: {date} is filled in by minibinder."""
        return f"http://{self.host}:{self.port}/{{date}}/"

    def __exit__(self, *exc) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
        if self._network:
            self._network.remove()
