"""Lifecycle for real: culling, limits, quotas, restarts, the warning, the operator's view."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import urllib.error
import urllib.request

import docker as docker_sdk
import pytest
import websocket

from ..support.browser import chromium
from ..support.jupyter import api, execute, start_kernel
from ..support.sse import events
from .conftest import ADMIN_TOKEN, launch, wait_for

NOTEBOOK = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


@pytest.fixture(scope="module")
def repo(git_server, builder):
    git_server.create("life/demo", {"index.ipynb": NOTEBOOK, "notes.txt": "keep me\n"})
    builder.built("gh/life/demo/HEAD")  # one image shared by every test here
    return "gh/life/demo/HEAD"


def session_container(ready):
    session_id = ready["url"].rstrip("/").rsplit("/", 1)[1]
    found = docker_sdk.from_env().containers.list(
        all=True, filters={"label": f"minibinder.session={session_id}"}
    )
    return found[0] if found else None


def get_status(url, headers=None):
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers or {}), timeout=10
        ) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def admin_request(serve, path):
    return urllib.request.Request(
        f"{serve.admin_url}{path}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )


def metric(serve, name):
    with urllib.request.urlopen(f"{serve.url}/metrics") as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return line
    return None


def test_idle_session_is_culled_and_nothing_survives(serve_with, repo):
    serve = serve_with(idle_timeout=6, cull_warning=2, cull_interval=1)
    ready = launch(serve, repo)
    container = session_container(ready)
    assert container is not None
    wait_for(lambda: session_container(ready) is None, 60, message="the idle session to go")
    assert get_status(f"{ready['url']}api/status?token={ready['token']}") == 404
    assert 'reason="idle"' in (metric(serve, "minibinder_sessions_ended_total") or "")


def test_running_computation_with_the_tab_closed_is_not_idle(serve_with, repo):
    serve = serve_with(idle_timeout=6, cull_warning=2, cull_interval=1)
    ready = launch(serve, repo)
    kernel = start_kernel(ready)
    computation = "import time\nend = time.time() + 14\nwhile time.time() < end: pass"
    execute(ready, kernel, computation, wait=False)  # then "closes the tab"
    time.sleep(11)  # idle, it would have gone at about 7 s
    assert session_container(ready) is not None, "a computing kernel was culled as idle"
    wait_for(lambda: session_container(ready) is None, 60, message="culling after the work")


def test_a_kernel_busy_without_using_cpu_does_not_keep_the_session(serve_with, repo):
    # Jupyter reports a kernel stuck after an OOM restart as "busy" forever; a kernel that
    # waits in `sleep` looks the same from outside: busy, no CPU. Neither is activity.
    serve = serve_with(idle_timeout=8, cull_warning=2, cull_interval=1)
    ready = launch(serve, repo)
    execute(ready, start_kernel(ready), "import time; time.sleep(600)", wait=False)
    # Gone about when idle_timeout ends (10 s measured), not merely at some point.
    wait_for(
        lambda: session_container(ready) is None,
        8 + 15,
        message="the stuck session to go by idle_timeout and a few rounds",
    )
    assert 'reason="idle"' in (metric(serve, "minibinder_sessions_ended_total") or "")


def test_maximum_age(serve_with, repo):
    serve = serve_with(max_age=8, cull_warning=2, cull_interval=1)
    ready = launch(serve, repo)
    deadline = time.monotonic() + 40
    while session_container(ready) is not None and time.monotonic() < deadline:
        get_status(f"{ready['url']}api/status?token={ready['token']}")  # stay active
        time.sleep(0.5)
    assert session_container(ready) is None
    assert 'reason="age"' in (metric(serve, "minibinder_sessions_ended_total") or "")


def test_memory_limit_kills_the_kernel_not_the_session(serve_with, repo):
    serve = serve_with(session_memory_limit="400M", session_memory_reservation="128M")
    bystander = launch(serve, repo)
    ready = launch(serve, repo)
    kernel = start_kernel(ready)
    assert execute(ready, kernel, "print('alive')")["stdout"] == "alive\n"
    died = execute(
        ready,
        kernel,
        "x = bytearray(900 * 1024 * 1024); x[::4096] = b'1' * len(x[::4096])",
        timeout=60,
    )
    assert died["states"][-1] in ("restarting", "dead"), died
    # Jupyter notices the dead kernel and restarts it; the session answers throughout.
    seen: list[object] = []

    def restarted() -> bool:
        status, model = api(ready, f"api/kernels/{kernel}")
        state = (model or {}).get("execution_state") if status == 200 else status
        if not seen or seen[-1] != state:
            seen.append(state)
        if state in ("idle", "starting"):
            return True
        # Jupyter can go on reporting "busy" after the restart (its log says "restarting
        # kernel"; see the stuck-kernel test above): then the kernel running code is the sign.
        try:
            return execute(ready, kernel, "print('back')", timeout=5)["stdout"] == "back\n"
        except (OSError, websocket.WebSocketException):
            return False

    try:
        wait_for(restarted, 90, message="the kernel to restart")
    except AssertionError as error:
        logs = session_container(ready).logs(tail=40).decode(errors="replace")
        raise AssertionError(f"{error}; states seen {seen}; the session's log:\n{logs}") from None
    assert api(ready, "api/status")[0] == 200
    assert api(bystander, "api/status")[0] == 200
    assert execute(ready, kernel, "print('back')")["stdout"] == "back\n"
    wait_for(
        lambda: (
            (metric(serve, "minibinder_oom_events_total") or " 0").split()[-1] not in ("0", "0.0")
        ),
        30,
        message="the OOM event to be counted",
    )
    with urllib.request.urlopen(admin_request(serve, "/admin/")) as response:
        assert "OOM" in response.read().decode()


def test_quota_refusal_is_polite(serve_with, repo):
    serve = serve_with(max_sessions=1)
    launch(serve, repo)
    refused = events(f"{serve.url}/build/{repo}")[-1]
    assert refused["phase"] == "failed" and "This server is full" in refused["message"]
    assert refused["retry_after"] > 0
    try:
        urllib.request.urlopen(f"{serve.url}/v2/{repo}")
        raise AssertionError("the launch page should refuse")
    except urllib.error.HTTPError as error:
        assert error.code == 429 and int(error.headers["Retry-After"]) > 0
        assert "This server is full" in error.read().decode()


def test_build_refused_below_the_disk_floor(serve_with, git_server):
    git_server.create("life/unbuilt", {"requirements.txt": "six\n"})
    serve = serve_with(disk_free_floor="1000T")
    refused = events(f"{serve.url}/build/gh/life/unbuilt/HEAD")[-1]
    assert refused["phase"] == "failed" and "Not enough disk space" in refused["message"]


def test_kill_9_then_restart_readopts_every_session(serve_with, repo, tmp_path):
    data = tmp_path / "shared-data"
    first = serve_with(data_dir=data)
    sessions = [launch(first, repo) for _ in range(3)]
    doomed = launch(first, repo)
    for pid in [*first.worker_pids(), first.process.pid]:
        os.kill(pid, signal.SIGKILL)
    first.process.wait()
    session_container(doomed).remove(force=True)  # one dies while minibinder is down
    second = serve_with(data_dir=data)
    for ready in sessions:
        path = ready["url"].split(first.url, 1)[1]
        assert get_status(f"{second.url}{path}api/status?token={ready['token']}") == 200
        other = sessions[(sessions.index(ready) + 1) % 3]
        assert get_status(f"{second.url}{path}api/status?token={other['token']}") == 403
    doomed_path = doomed["url"].split(first.url, 1)[1]
    wait_for(
        lambda: get_status(f"{second.url}{doomed_path}api/status") == 404,
        30,
        message="the dead session to be cleaned up",
    )


def test_the_warning_reaches_a_real_browser_and_offers_the_download(serve_with, repo, tmp_path):
    from playwright.sync_api import expect

    serve = serve_with(max_age=90, cull_warning=85, cull_interval=2)
    with chromium(tmp_path / "profile") as browser:
        page = browser.new_page()
        page.goto(f"{serve.url}/v2/{repo}")
        page.wait_for_url("**/user/*/lab*", timeout=120_000)
        notice = page.locator("#minibinder-notice")
        expect(notice).to_contain_text("maximum session length", timeout=60_000)
        link = notice.get_by_role("link", name="Download your work (zip)")
        response = page.request.get(serve.url + link.get_attribute("href"))
        assert response.status == 200
        assert response.headers["content-type"] == "application/zip"
        assert response.body()[:2] == b"PK"
        # Without the session's credentials the same address gives nothing.
        anonymous = get_status(serve.url + link.get_attribute("href"))
        assert anonymous == 403


def test_operator_pages(serve_with, repo):
    serve = serve_with()
    ready = launch(serve, repo)
    assert get_status(f"{serve.admin_url}/admin/") == 401
    assert get_status(f"{serve.url}/admin/") == 404  # never beside session content
    with urllib.request.urlopen(admin_request(serve, "/admin/")) as response:
        page = response.read().decode()
    session_path = ready["url"].split(serve.url, 1)[1]
    assert session_path in page and ready["token"] not in page
    assert "Running sessions, last 24 h" in page and "life/demo" in page
    with urllib.request.urlopen(admin_request(serve, "/admin/launches.jsonl")) as response:
        lines = [json.loads(line) for line in response.read().decode().splitlines()]
    assert lines[-1]["schema"] == "binderhub.jupyter.org/launch"
    assert lines[-1]["spec"] == "life/demo/HEAD" and lines[-1]["status"] == "success"
    assert "client_ip" not in lines[-1]
    # curl with ?token= gets the export itself, not a redirect that sets a cookie.
    export = f"{serve.admin_url}/admin/launches.jsonl?token={ADMIN_TOKEN}"
    with urllib.request.urlopen(export) as response:
        assert response.geturl() == export
        assert [json.loads(line) for line in response.read().decode().splitlines()] == lines
    # The shell's export says the same origin as the page's: this machine's name.
    from .test_cli import minibinder

    shell = minibinder("launches", config_file=serve.config_file)
    assert [json.loads(line) for line in shell.stdout.splitlines()] == lines
    assert lines[-1]["origin"] == socket.gethostname()


def test_operator_can_extend_and_stop_a_session(serve_with, repo):
    import re

    serve = serve_with()
    ready = launch(serve, repo)
    session_id = ready["url"].rstrip("/").rsplit("/", 1)[1]
    with urllib.request.urlopen(admin_request(serve, "/admin/")) as response:
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', response.read().decode()).group(1)

    def post(action, token_ok=True):
        request = admin_request(serve, f"/admin/sessions/{session_id}/{action}")
        request.data = f"csrf={csrf if token_ok else 'forged'}".encode()
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(request) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    assert post("stop", token_ok=False) == 400
    assert session_container(ready) is not None
    assert post("extend") == 200
    with urllib.request.urlopen(admin_request(serve, "/admin/")) as response:
        assert "(+60)" in response.read().decode()
    assert post("stop") == 200
    assert session_container(ready) is None
    assert get_status(f"{ready['url']}api/status?token={ready['token']}") == 404
