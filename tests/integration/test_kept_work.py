"""Kept work (#24): a session's files survive its cull and come back at the same browser's
next launch of the same repository: never to another browser, not after keep_work_hours, the
user's copy beside the repository's where both changed a file, and what did not fit listed."""

from __future__ import annotations

import base64
import http.cookiejar
import json
import re
import stat
import time
import urllib.error
import urllib.parse
import urllib.request

import docker as docker_sdk
import pytest

from minibinder.store import Store

from ..support.jupyter import api
from ..support.sse import events
from .conftest import ADMIN_TOKEN, wait_for

NOTEBOOK = {
    "cells": [{"cell_type": "code", "source": "print('kept')", "metadata": {},
               "outputs": [], "execution_count": None}],
    "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
}  # fmt: skip
CULLING = {"idle_timeout": 6, "cull_warning": 2, "cull_interval": 1, "ref_cache_seconds": 0}


class Browser:
    """A browser with its own cookie jar: the launch page, then the event stream."""

    def __init__(self, serve):
        self.serve = serve
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def launch(self, spec: str, query: str = "") -> dict:
        with self.opener.open(f"{self.serve.url}/v2/{spec}{query}", timeout=60) as page:
            page.read()
        received = events(f"{self.serve.url}/build/{spec}{query}", opener=self.opener)
        assert received[-1]["phase"] == "ready", received[-1]
        return received[-1]


def session_container(ready):
    session_id = ready["url"].rstrip("/").rsplit("/", 1)[1]
    found = docker_sdk.from_env().containers.list(
        all=True, filters={"label": f"minibinder.session={session_id}"}
    )
    return found[0] if found else None


def culled(ready) -> None:
    wait_for(lambda: session_container(ready) is None, 60, message="the idle session to go")


def put(ready, path: str, body: dict) -> None:
    status, _ = api(ready, f"api/contents/{path}", "PUT", body)
    assert status in (200, 201), (path, status)


def read(ready, path: str):
    status, model = api(ready, f"api/contents/{path}?content=1")
    return model["content"] if status == 200 else None


def text_file(content: str) -> dict:
    return {"type": "file", "format": "text", "content": content}


@pytest.fixture
def repo(git_server):
    name = f"work/kept{time.monotonic_ns()}"
    repository = git_server.create(
        name, {"README.md": "from the repository\n", "analysis.py": "print(1)\n"}
    )
    repository.spec = f"gh/{name}/HEAD"
    return repository


def test_work_comes_back_to_the_same_browser_only(serve_with, repo):
    serve = serve_with(keep_work="browser", keep_work_limit="1M", **CULLING)
    student, neighbour = Browser(serve), Browser(serve)

    first = student.launch(repo.spec)
    assert "kept_work" not in first
    [session] = Store(serve.data_dir / "minibinder.sqlite").sessions("running")
    assert session.keeper.startswith("browser:b-")
    put(first, "notes.ipynb", {"type": "notebook", "content": NOTEBOOK})
    put(first, "data", {"type": "directory"})
    put(first, "data/out.csv", text_file("a,b\n1,2\n"))
    put(first, "README.md", text_file("my own notes on the README\n"))
    big = base64.b64encode(b"\0" * (2 * 2**20)).decode()
    put(first, "big.bin", {"type": "file", "format": "base64", "content": big})
    culled(first)

    shelf = serve.data_dir / "kept-work"
    [folder] = [entry for entry in shelf.iterdir() if not entry.name.startswith(".")]
    assert stat.S_IMODE(shelf.stat().st_mode) == 0o700
    for kept_file in folder.iterdir():
        assert stat.S_IMODE(kept_file.stat().st_mode) == 0o600, kept_file

    # Upstream changes the README the student changed too, and the student comes back.
    repo.commit({"README.md": "the repository's new README\n"}, "update the README")
    again = student.launch(repo.spec)
    kept = again["kept_work"]
    assert kept["files"] == 3
    assert kept["conflicts"] == [{"path": "README.md", "mine": "README.mine.md"}]
    assert kept["skipped"] == [{"path": "big.bin", "size": 2 * 2**20}]
    assert read(again, "notes.ipynb")["cells"][0]["source"] == "print('kept')"
    assert read(again, "data/out.csv") == "a,b\n1,2\n"
    assert read(again, "README.md") == "the repository's new README\n"
    assert read(again, "README.mine.md") == "my own notes on the README\n"
    assert read(again, "big.bin") is None
    # Restored files are the user's, not root's: the student can write them again.
    put(again, "data/out.csv", text_file("a,b\n3,4\n"))

    # Another browser gets the repository as it is; so does the student starting clean.
    assert read(neighbour.launch(repo.spec), "notes.ipynb") is None
    clean = student.launch(repo.spec, "?clean=1")
    assert "kept_work" not in clean and read(clean, "notes.ipynb") is None

    export = urllib.request.Request(
        f"{serve.admin_url}/admin/launches.jsonl",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    with urllib.request.urlopen(export, timeout=30) as response:
        text = response.read().decode()
    assert [json.loads(line).get("restored_files") for line in text.splitlines()].count(3) == 1
    assert "notes.ipynb" not in text and "out.csv" not in text


def test_work_kept_on_a_newer_commit_does_not_go_back_to_an_older_one(serve_with, repo):
    older = repo.head
    repo.commit({"README.md": "newer\n"}, "a newer commit", date="2030-01-01T00:00:00Z")
    serve = serve_with(keep_work="browser", **CULLING)
    student = Browser(serve)
    first = student.launch(repo.spec)  # the newer commit
    put(first, "notes.ipynb", {"type": "notebook", "content": NOTEBOOK})
    culled(first)

    student.opener.open(f"{serve.url}/v2/gh/{repo.path}/{older}", timeout=60).read()
    received = events(f"{serve.url}/build/gh/{repo.path}/{older}", opener=student.opener)
    assert received[-1]["phase"] == "ready" and "kept_work" not in received[-1]
    assert any("made on a newer commit" in event.get("message", "") for event in received)
    assert read(received[-1], "notes.ipynb") is None
    # Still kept: the newer commit gets it back.
    assert student.launch(repo.spec)["kept_work"]["files"] == 1


def test_work_is_gone_after_keep_work_hours(serve_with, repo):
    serve = serve_with(keep_work="browser", keep_work_hours=0.0012, **CULLING)  # 4.3 s
    student = Browser(serve)
    first = student.launch(repo.spec)
    put(first, "notes.ipynb", {"type": "notebook", "content": NOTEBOOK})
    culled(first)
    assert any((serve.data_dir / "kept-work").iterdir())
    time.sleep(5)
    later = student.launch(repo.spec)
    assert "kept_work" not in later and read(later, "notes.ipynb") is None
    assert not [e for e in (serve.data_dir / "kept-work").iterdir() if e.name[0] != "."]


def home_page(browser: Browser) -> str:
    with browser.opener.open(f"{browser.serve.url}/", timeout=30) as page:
        return page.read().decode()


def post_delete(browser: Browser, token: str, origin: str = "") -> tuple[int, str]:
    request = urllib.request.Request(
        f"{browser.serve.url}/work/delete",
        data=urllib.parse.urlencode({"token": token}).encode(),
        headers={"Origin": origin} if origin else {},
        method="POST",
    )
    try:
        with browser.opener.open(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_operator_and_the_owner_see_and_delete_kept_work(serve_with, repo):
    from .test_cli import minibinder

    # The warning shows after a second without activity; the cull would come after 30.
    serve = serve_with(keep_work="browser", keep_work_hours=5, idle_timeout=30, cull_warning=29)
    student = Browser(serve)
    assert "kept for 5 hours" in home_page(student)
    ready = student.launch(repo.spec)
    put(ready, "notes.ipynb", {"type": "notebook", "content": NOTEBOOK})
    time.sleep(2)
    status, body = api(ready, "_minibinder/status")
    assert status == 200 and body["warning"]["reason"] == "idle", body
    assert "will be kept for 5 hours" in body["warning"]["message"]
    session_id = ready["url"].rstrip("/").rsplit("/", 1)[1]
    stopped = minibinder("stop", session_id, config_file=serve.config_file)  # the operator
    assert stopped.returncode == 0, stopped.stderr
    listed = minibinder("work", config_file=serve.config_file)
    assert listed.returncode == 0, listed.stderr
    assert repo.url in listed.stdout and "browser:b-" in listed.stdout
    with urllib.request.urlopen(f"{serve.url}/metrics", timeout=30) as response:
        metrics = response.read().decode()
    assert "minibinder_kept_work 1.0" in metrics

    home = home_page(student)
    token = re.search(r'name="token" value="([0-9a-f]+)"', home).group(1)
    # Another site's page posting the form, or a forged token, deletes nothing.
    assert post_delete(student, token, origin="https://evil.example")[0] == 400
    assert post_delete(student, "0" * 32)[0] == 400
    assert post_delete(Browser(serve), token)[0] == 400  # a browser without its own work
    assert repo.url in minibinder("work", config_file=serve.config_file).stdout

    status, page = post_delete(student, token, origin=serve.url)
    assert status == 200 and "Deleted (1 repositories)" in page
    assert repo.url not in minibinder("work", config_file=serve.config_file).stdout
    assert "kept_work" not in student.launch(repo.spec)


def test_the_operator_deletes_kept_work_by_key(serve_with, repo):
    from .test_cli import minibinder

    serve = serve_with(keep_work="browser", **CULLING)
    ready = Browser(serve).launch(repo.spec)
    put(ready, "notes.ipynb", {"type": "notebook", "content": NOTEBOOK})
    session_id = ready["url"].rstrip("/").rsplit("/", 1)[1]
    assert minibinder("stop", session_id, config_file=serve.config_file).returncode == 0
    [key] = [e.name for e in (serve.data_dir / "kept-work").iterdir() if e.name[0] != "."]
    unknown = minibinder("work", "--delete", "f" * 32, config_file=serve.config_file)
    assert unknown.returncode != 0 and "no kept work with the key" in unknown.stderr
    gone = minibinder("work", "--delete", key, config_file=serve.config_file)
    assert gone.returncode == 0 and "deleted 1" in gone.stdout, gone.stderr
    assert not (serve.data_dir / "kept-work" / key).exists()


def test_work_is_kept_when_the_user_shuts_the_session_down(serve_with, repo):
    serve = serve_with(keep_work="browser", cull_interval=2)
    student = Browser(serve)
    first = student.launch(repo.spec)
    put(first, "notes.ipynb", {"type": "notebook", "content": NOTEBOOK})
    assert api(first, "api/shutdown", "POST", {})[0] in (200, 204)  # File → Shut Down
    culled(first)
    again = student.launch(repo.spec)
    assert again["kept_work"]["files"] == 1
    assert read(again, "notes.ipynb")["cells"][0]["source"] == "print('kept')"


def test_in_a_browser_the_launch_page_says_what_came_back_and_home_deletes_it(
    serve_with, repo, tmp_path
):
    from playwright.sync_api import expect

    from ..support.browser import chromium
    from .test_cli import minibinder

    serve = serve_with(keep_work="browser", keep_work_hours=5)
    with chromium(tmp_path / "profile") as browser:
        page = browser.new_page()
        page.goto(f"{serve.url}/v2/{repo.spec}")
        page.wait_for_url("**/user/**", timeout=120_000)
        [record] = Store(serve.data_dir / "minibinder.sqlite").sessions("running")
        session = {"url": f"{serve.url}/user/{record.id}/", "token": record.token}
        put(session, "notes.ipynb", {"type": "notebook", "content": NOTEBOOK})
        page.goto(f"{serve.url}/")
        stopped = minibinder("stop", record.id, config_file=serve.config_file)
        assert stopped.returncode == 0, stopped.stderr

        page.goto(f"{serve.url}/v2/{repo.spec}")
        expect(page.locator("#kept-summary")).to_contain_text(
            re.compile(r"Your work from .+ was restored \(1 files\)"), timeout=120_000
        )
        clean = page.get_by_role("link", name="Start clean instead")
        assert "clean=1" in (clean.get_attribute("href") or "")

        page.goto(f"{serve.url}/")
        expect(page.get_by_text("kept for 5 hours")).to_be_visible()
        page.get_by_role("button", name="Delete my kept work").click()
        expect(page.get_by_text("Deleted (1 repositories)")).to_be_visible()
    assert repo.url not in minibinder("work", config_file=serve.config_file).stdout


def test_work_is_kept_when_the_host_restarts(serve_with, repo, tmp_path):
    data = tmp_path / "data"
    serve = serve_with(data_dir=data, keep_work="browser", cull_interval=2)
    student = Browser(serve)
    first = student.launch(repo.spec)
    put(first, "notes.ipynb", {"type": "notebook", "content": NOTEBOOK})
    serve.stop()  # the host goes down: minibinder first, then its containers
    session_container(first).stop(timeout=10)
    student.serve = serve_with(data_dir=data, keep_work="browser", cull_interval=2)
    culled(first)  # the new serve finds the container stopped, keeps the work, removes it
    again = student.launch(repo.spec)
    assert again["kept_work"]["files"] == 1
    assert read(again, "notes.ipynb")["cells"][0]["source"] == "print('kept')"


def test_work_that_cannot_go_back_leaves_a_clean_session_and_says_so(serve_with, repo):
    from .test_cli import minibinder

    serve = serve_with(keep_work="browser")
    student = Browser(serve)
    first = student.launch(repo.spec)
    put(first, "notes.ipynb", {"type": "notebook", "content": NOTEBOOK})
    session_id = first["url"].rstrip("/").rsplit("/", 1)[1]
    assert minibinder("stop", session_id, config_file=serve.config_file).returncode == 0
    [folder] = [e for e in (serve.data_dir / "kept-work").iterdir() if e.name[0] != "."]
    (folder / "home.tar").write_bytes(b"not a tar archive" * 100)  # a damaged disk, say

    received = events(f"{serve.url}/build/{repo.spec}", opener=student.opener)
    assert received[-1]["phase"] == "ready" and "kept_work" not in received[-1]
    assert any("could not be put back" in e.get("message", "") for e in received)
    assert read(received[-1], "README.md") == "from the repository\n"
    assert folder.exists()  # still kept
