"""A real conda channel for tests: small noarch packages this module makes itself (index.json,
paths.json, files in a .tar.bz2), repodata written by rattler's own indexer, served over HTTP
on 127.0.0.1 by a thread of the test."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import json
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from rattler.index import index_fs


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send_head(self):
        # Always the whole file: rattler's repodata cache copes badly with 304 answers.
        del self.headers["If-Modified-Since"]
        return super().send_head()


def make_package(
    channel: Path, name: str, version: str, depends=(), files=None, build: str = "0"
) -> str:
    """A `noarch: generic` package; `bin/` files are executable."""
    files = files or {f"share/{name}/README": f"{name} {version}\n"}
    folder = channel / "noarch"
    folder.mkdir(parents=True, exist_ok=True)
    filename = f"{name}-{version}-{build}.tar.bz2"
    index = {
        "name": name,
        "version": version,
        "build": build,
        "build_number": 0,
        "depends": list(depends),
        "noarch": "generic",
        "subdir": "noarch",
        "timestamp": 1700000000000,
        "license": "BSD-3-Clause",
    }
    paths = {
        "paths_version": 1,
        "paths": [
            {
                "_path": path,
                "path_type": "hardlink",
                "size_in_bytes": len(content.encode()),
                "sha256": hashlib.sha256(content.encode()).hexdigest(),
            }
            for path, content in files.items()
        ],
    }
    with tarfile.open(folder / filename, "w:bz2") as tar:

        def add(member: str, data: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(member)
            info.size, info.mode, info.mtime = len(data), mode, 1700000000
            tar.addfile(info, io.BytesIO(data))

        add("info/index.json", json.dumps(index).encode())
        add("info/paths.json", json.dumps(paths).encode())
        add("info/files", ("\n".join(files) + "\n").encode())
        for path, content in files.items():
            add(path, content.encode(), 0o755 if path.startswith("bin/") else 0o644)
    return filename


class CondaChannel:
    """`with CondaChannel(folder) as channel:` serves the packages made with `add`."""

    def __init__(self, folder: Path):
        self.folder = folder
        (folder / "linux-64").mkdir(parents=True, exist_ok=True)
        self.server: ThreadingHTTPServer | None = None
        self.host, self.port = "127.0.0.1", 0

    def add(self, name: str, version: str, depends=(), files=None) -> CondaChannel:
        make_package(self.folder, name, version, depends, files)
        return self

    def index(self) -> CondaChannel:
        asyncio.run(index_fs(self.folder, write_shards=False, force=True))
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, port: int = 0, host: str = "127.0.0.1") -> CondaChannel:
        """Serve on `host` (loopback: the host's solver only; a Docker network's gateway:
        build steps and sessions too)."""
        handler = functools.partial(_Quiet, directory=str(self.folder))
        self.host = host
        self.server = ThreadingHTTPServer((host, port), handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def __enter__(self) -> CondaChannel:
        return self.index().start()

    def __exit__(self, *exc) -> None:
        self.stop()
