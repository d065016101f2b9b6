"""`minibinder open`: a directory as it is on disk (uncommitted changes included) and a spec,
each opened in a session of the running service, the address printed with its token."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request

from .conftest import ADMIN_TOKEN, serve_config
from .test_lifecycle import NOTEBOOK


def minibinder_open(config_file, what):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "minibinder",
            "--config",
            str(config_file),
            "open",
            what,
            "--no-browser",
            "--detach",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return re.search(r"^(http\S+\?token=\S+)$", done.stdout, re.MULTILINE).group(1)


def status_of(url: str) -> tuple[int, str]:
    base, token = url.split("?token=")
    with urllib.request.urlopen(f"{base}api/contents?token={token}", timeout=30) as response:
        return response.status, response.read().decode()


def test_a_directory_and_a_spec_open_beside_the_running_service(
    serve_with, git_server, build_config, tmp_path
):
    serve = serve_with()
    # `open` finds the service through the same settings: bind names its port.
    config_file = serve_config(
        tmp_path / "open.toml",
        serve.data_dir,
        build_config,
        git_server,
        admin_token=ADMIN_TOKEN,
        bind=f"127.0.0.1:{serve.port}",
    )
    work = tmp_path / "work"
    work.mkdir()
    (work / "requirements.txt").write_text("")
    (work / "draft.ipynb").write_text(NOTEBOOK)  # never committed anywhere
    url = minibinder_open(config_file, str(work))
    assert url.startswith(f"{serve.url}/user/")
    status, listing = status_of(url)
    assert status == 200 and "draft.ipynb" in listing
    git_server.create("open/spec", {"index.ipynb": NOTEBOOK})
    url = minibinder_open(config_file, "gh/open/spec/HEAD")
    status, listing = status_of(url)
    assert status == 200 and "index.ipynb" in listing
