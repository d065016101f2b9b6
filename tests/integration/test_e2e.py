"""End to end through `minibinder serve`: the BinderHub JS client, a real browser, tokens."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import docker as docker_sdk
import pytest

from ..support.browser import chromium, run_cell
from ..support.serving import ServeProcess, remove_test_sessions
from ..support.sse import events
from .conftest import serve_config

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = json.dumps(
    {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": "c1",
                "metadata": {},
                "outputs": [],
                "source": ["import tabulate\n", "print(6 * 7)"],
            }
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
)


@pytest.fixture(scope="module")
def server(tmp_path_factory, git_server, build_config):
    git_server.create(
        "e2e/demo", {"requirements.txt": "tabulate==0.9.0\n", "analysis.ipynb": NOTEBOOK}
    )
    folder = tmp_path_factory.mktemp("e2e")
    config = serve_config(
        folder / "minibinder.toml", folder / "data", build_config, git_server, threads=64
    )
    serve = ServeProcess(config, folder / "serve.log").start()
    yield serve
    serve.stop()
    remove_test_sessions(build_config.image_prefix)


def status(url: str, headers: dict | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {})) as r:
            return r.status
    except urllib.error.HTTPError as error:
        return error.code


def test_event_stream_phases_and_ready_payload(server):
    received = events(f"{server.url}/build/gh/e2e/demo/HEAD")
    phases = [event["phase"] for event in received]
    assert phases[-3:] == ["built", "launching", "ready"]
    assert phases[0] in ("fetching", "built", "waiting")
    ready = received[-1]
    assert ready["url"].startswith(f"{server.url}/user/") and ready["url"].endswith("/")
    sha = ready["binder_persistent_request"].rsplit("/", 1)[1]
    assert len(sha) == 40
    assert ready["binder_request"] == "v2/gh/e2e/demo/HEAD"
    assert ready["binder_persistent_request"] == f"v2/gh/e2e/demo/{sha}"
    assert ready["binder_launch_host"] == server.url + "/"
    assert ready["image"].endswith(":" + sha) and ready["repo_url"].endswith("/e2e/demo")
    assert status(f"{ready['url']}api/status?token={ready['token']}") == 200
    again = [event["phase"] for event in events(f"{server.url}/build/gh/e2e/demo/HEAD")]
    assert again == ["built", "launching", "ready"]  # a cached image goes straight to launch


def test_build_only(server):
    received = events(f"{server.url}/build/gh/e2e/demo/HEAD?build_only=true")
    assert received[-1]["phase"] == "ready"
    assert "imageName" in received[-1] and "url" not in received[-1]


def test_failures_are_failed_events(server):
    for spec, message in [
        ("gh/e2e/demo", "Did you mean"),
        ("gh/e2e/demo/no-such-branch", "no branch or tag"),
        ("gh/e2e/missing/HEAD", "repository not found: "),
    ]:
        received = events(f"{server.url}/build/{spec}")
        assert received[-1]["phase"] == "failed" and message in received[-1]["message"]


def test_binderhub_js_client_and_jupyterlab_services(server):
    node = shutil.which("node")
    assert node, "Node.js is required (scripts/ensure-test-tools.sh installs it)"
    code = "import os, tabulate; print(6 * 7, os.environ['BINDER_REQUEST'])"
    result = subprocess.run(
        [node, "binder_client.mjs", server.url + "/", "gh/e2e/demo/HEAD", code],
        cwd=ROOT / "tests" / "js",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["phases"][-1] == "ready"
    assert report["output"] == "42 v2/gh/e2e/demo/HEAD\n"


def test_a_session_token_opens_only_its_own_session(server):
    a = events(f"{server.url}/build/gh/e2e/demo/HEAD")[-1]
    b = events(f"{server.url}/build/gh/e2e/demo/HEAD")[-1]
    assert a["url"] != b["url"]
    assert status(f"{a['url']}api/status?token={a['token']}") == 200
    assert status(f"{b['url']}api/status?token={a['token']}") == 403
    assert status(f"{b['url']}api/status", {"Authorization": f"token {a['token']}"}) == 403
    assert status(f"{b['url']}api/status") == 403
    # The login cookie Jupyter sets for A does not open B either.
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    opener.open(f"{a['url']}lab?token={a['token']}").read()
    cookies = [c for c in opener.handlers if isinstance(c, urllib.request.HTTPCookieProcessor)]
    jar = cookies[0].cookiejar
    assert any(cookie.path.startswith(a["url"].split(server.url)[1]) for cookie in jar)
    cookie_header = "; ".join(f"{c.name}={c.value}" for c in jar)
    assert status(f"{a['url']}api/status", {"Cookie": cookie_header}) == 200
    assert status(f"{b['url']}api/status", {"Cookie": cookie_header}) == 403


def test_browser_launch_lands_in_jupyterlab_and_runs_a_cell(server, tmp_path):
    from playwright.sync_api import expect

    with chromium(tmp_path / "profile") as browser:
        page = browser.new_page()
        page.goto(f"{server.url}/v2/gh/e2e/demo/HEAD?labpath=analysis.ipynb")
        expect(page.locator(".progress")).to_be_visible()
        expect(page.get_by_text("Why can a first launch be slow?")).to_be_visible()
        page.wait_for_url("**/user/*/doc/tree/analysis.ipynb*", timeout=120_000)
        cell = page.locator(".jp-Cell").first
        expect(cell).to_be_visible(timeout=60_000)
        # The status bar names the kernel once its session is connected.
        expect(page.get_by_text(re.compile(r"Python 3 \(ipykernel\) \| Idle"))).to_be_visible(
            timeout=90_000
        )
        run_cell(page, cell, lambda output: expect(output).to_have_text("42", timeout=20_000))


def test_home_page_makes_links_and_badges(server):
    with urllib.request.urlopen(
        f"{server.url}/?provider=gh&repo=e2e/demo&path=analysis.ipynb"
    ) as response:
        page = response.read().decode()
    assert f"{server.url}/v2/gh/e2e/demo/HEAD?labpath=analysis.ipynb" in page
    assert f"[![Binder]({server.url}/badge_logo.svg)]" in page
    assert status(f"{server.url}/badge_logo.svg") == 200


def test_health_versions_metrics(server):
    with urllib.request.urlopen(f"{server.url}/health") as response:
        assert json.loads(response.read())["checks"]["docker"] is True
    with urllib.request.urlopen(f"{server.url}/versions") as response:
        assert "minibinder" in json.loads(response.read())
    with urllib.request.urlopen(f"{server.url}/metrics") as response:
        text = response.read().decode()
    assert 'minibinder_launches_total{status="success"}' in text
    assert "minibinder_launch_duration_seconds_bucket" in text
    assert 'minibinder_builds_total{status="cached"}' in text
    assert "minibinder_sessions_running" in text
    assert "minibinder_builds_in_progress" in text


def test_session_container_is_hardened_and_carries_binder_env(server):
    ready = events(f"{server.url}/build/gh/e2e/demo/HEAD")[-1]
    session_id = ready["url"].rstrip("/").rsplit("/", 1)[1]
    sdk = docker_sdk.from_env()
    container = sdk.containers.list(filters={"label": f"minibinder.session={session_id}"})[0]
    host = container.attrs["HostConfig"]
    assert host["Memory"] == 2 * 2**30 and host["MemorySwap"] == 2 * 2**30
    assert host["MemoryReservation"] == 2**30
    assert host["NanoCpus"] == 10**9 and host["PidsLimit"] == 512
    assert host["CapDrop"] == ["ALL"] and "no-new-privileges" in host["SecurityOpt"]
    assert not host.get("PortBindings") and not host.get("Privileged")
    assert not any("docker.sock" in bind for bind in host.get("Binds") or [])
    assert container.attrs["Config"]["User"] == "1000"
    assert list(container.attrs["NetworkSettings"]["Networks"]) == ["minibinder-sessions"]
    env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
    assert env["BINDER_REQUEST"] == "v2/gh/e2e/demo/HEAD"
    assert env["BINDER_PERSISTENT_REQUEST"] == ready["binder_persistent_request"]
    assert env["BINDER_REF_URL"] == ready["binder_ref_url"]
    assert env["BINDER_LAUNCH_HOST"] == server.url + "/"
    assert env["BINDER_REPO_URL"] == ready["repo_url"]
    assert container.labels["minibinder.spec"] == "gh/e2e/demo/HEAD"
    # The classic notebook interface is served too.
    assert status(f"{ready['url']}tree?token={ready['token']}") == 200
