"""Sessions reached where the engine says they are (#20): on a rootful engine the proxy can
take either path, so both run here; the published one is what rootless Docker, Podman and
Docker Desktop use (tests/integration/test_engines.py runs it on those engines)."""

from __future__ import annotations

import os
import signal

import docker as docker_sdk
import pytest

from minibinder.store import Store

from ..support.jupyter import execute, start_kernel
from .conftest import launch
from .test_lifecycle import NOTEBOOK, get_status, session_container


@pytest.fixture(scope="module")
def repo(git_server, builder):
    git_server.create("reach/demo", {"index.ipynb": NOTEBOOK})
    builder.built("gh/reach/demo/HEAD")
    return "gh/reach/demo/HEAD"


def test_a_published_session_is_reached_on_loopback_and_readopted(serve_with, repo, tmp_path):
    data = tmp_path / "data"
    first = serve_with(data_dir=data, session_reach="published")
    ready = launch(first, repo)
    session_id = ready["url"].rstrip("/").rsplit("/", 1)[1]
    record = Store(data / "minibinder.sqlite").get_session(session_id)
    assert record.target.startswith("127.0.0.1:"), record.target
    container = session_container(ready)
    bindings = container.attrs["NetworkSettings"]["Ports"]["8888/tcp"]
    assert {binding["HostIp"] for binding in bindings} == {"127.0.0.1"}  # never 0.0.0.0
    assert container.labels["minibinder.reach"] == "published"
    kernel = start_kernel(ready)  # a real kernel over the proxy's WebSocket
    assert execute(ready, kernel, "print(6 * 7)")["stdout"].strip() == "42"
    # Restarted, minibinder finds the session at its port again (the engine may move it).
    for pid in [*first.worker_pids(), first.process.pid]:
        os.kill(pid, signal.SIGKILL)
    first.process.wait()
    second = serve_with(data_dir=data, session_reach="auto")  # the reach is the session's own
    path = ready["url"].split(first.url, 1)[1]
    assert get_status(f"{second.url}{path}api/status?token={ready['token']}") == 200


def test_a_network_session_publishes_nothing(serve_with, repo):
    serve = serve_with(session_reach="network")
    ready = launch(serve, repo)
    container = session_container(ready)
    # The image says EXPOSE 8888; nothing of it is bound on the host.
    assert not any(container.attrs["NetworkSettings"]["Ports"].values())
    assert container.labels["minibinder.reach"] == "network"
    docker_sdk.from_env().close()
