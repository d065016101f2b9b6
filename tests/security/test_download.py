"""The zip download of a session's work: every regular file, hard-linked or not; what a zip
cannot hold is listed inside it; it is made inside the session; another session's token opens
nothing."""

from __future__ import annotations

import io
import urllib.error
import urllib.request
import zipfile

from ..support.jupyter import execute, start_kernel
from .conftest import launch

MAKE_FILES = """
import os
os.makedirs('work', exist_ok=True)
open('work/data.csv', 'w').write('a,b\\n1,2\\n')
os.link('work/data.csv', 'work/same-data.csv')
os.symlink('/etc/passwd', 'work/passwd-link')
print('ok')
"""


def download(ready: dict, token: str) -> tuple[int, bytes]:
    url = f"{ready['url']}_minibinder/download?token={token}"
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""


def test_hard_links_are_included_and_links_listed(serve_with, git_server):
    git_server.create("sec/download", {"notes.md": "# notes\n"})
    serve = serve_with()
    ready = launch(serve, "gh/sec/download/HEAD")
    assert execute(ready, start_kernel(ready), MAKE_FILES)["stdout"] == "ok\n"
    status, body = download(ready, ready["token"])
    assert status == 200
    archive = zipfile.ZipFile(io.BytesIO(body))
    names = set(archive.namelist())
    assert {"notes.md", "work/data.csv", "work/same-data.csv"} <= names
    assert archive.read("work/same-data.csv") == b"a,b\n1,2\n"
    assert "work/passwd-link" not in names
    left_out = archive.read("MINIBINDER-LEFT-OUT.txt").decode()
    assert "work/passwd-link: a symbolic link to /etc/passwd" in left_out
    # Another session's token opens nothing of this one.
    other = launch(serve, "gh/sec/download/HEAD")
    assert download(ready, other["token"])[0] == 403
