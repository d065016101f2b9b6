"""The Docker daemon stops and starts again while minibinder runs.

Marked `restarts_docker`, so it runs last: every other integration test needs the daemon.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ..support.serving import ServeProcess, remove_test_sessions
from ..support.sse import events
from .conftest import serve_config

pytestmark = pytest.mark.restarts_docker
ROOT = Path(__file__).resolve().parents[2]


def get(url: str) -> tuple[int | None, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return None, ""


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def daemon_answers() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def test_minibinder_survives_a_docker_restart(tmp_path, git_server, builder, build_config):
    git_server.create(
        "restart/demo",
        {
            "index.ipynb": json.dumps(
                {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
            )
        },
    )
    builder.built("gh/restart/demo/HEAD")
    config = serve_config(
        tmp_path / "minibinder.toml", tmp_path / "data", build_config, git_server, cull_interval=2
    )
    serve = ServeProcess(config, tmp_path / "serve.log").start()
    try:
        ready = events(f"{serve.url}/build/gh/restart/demo/HEAD")[-1]
        assert ready["phase"] == "ready"
        status_url = f"{ready['url']}api/status?token={ready['token']}"
        assert get(status_url)[0] == 200

        # Root's daemon only: a rootless dockerd (tests/support/engines.py) runs as its own user.
        subprocess.run(["pkill", "-TERM", "-u", "root", "-x", "dockerd"], check=False)
        wait_for(lambda: not daemon_answers(), 60, "dockerd to stop answering")
        health, body = get(f"{serve.url}/health")
        assert health == 503 and "Docker daemon does not answer" in body
        assert "Docker daemon does not answer" in get(f"{serve.url}/")[1]
        refused = events(f"{serve.url}/build/gh/restart/demo/HEAD")[-1]
        assert refused["phase"] == "failed" and "Docker" in refused["message"]

        wait_for(
            lambda: subprocess.run(["pgrep", "-u", "root", "-x", "dockerd"]).returncode != 0,
            90,
            "dockerd to exit",
        )
        subprocess.run([str(ROOT / "scripts" / "ensure-docker.sh")], check=True, timeout=150)
        wait_for(lambda: get(f"{serve.url}/health")[0] == 200, 60, "health to recover")
        # The session's container comes back (restart policy); the route follows its address
        # and the same token still opens it.
        wait_for(lambda: get(status_url)[0] == 200, 90, "the session to answer again")
    finally:
        serve.stop()
        if daemon_answers():
            remove_test_sessions(build_config.image_prefix)
