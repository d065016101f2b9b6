"""minibinder on rootless Docker (#20), the engine of a lab server without root and the network
situation of Docker Desktop: container addresses are not reachable from the host, ports
published on 127.0.0.1 are; this cgroup v1 host gives it no cgroups, so no limits hold.

The launch path end to end: /build → ready → a kernel runs a cell over the proxy's WebSocket →
cull → a restart re-adopts; and the refusal of an engine without limits on a public bind."""

from __future__ import annotations

import time

import pytest

from minibinder.store import Store

from ..support.engines import ensure
from ..support.jupyter import execute, start_kernel
from ..support.serving import ServeProcess
from .conftest import ADMIN_TOKEN, launch, serve_config, wait_for
from .test_lifecycle import NOTEBOOK, get_status


@pytest.fixture(scope="module")
def rootless(build_config):
    base = build_config.base_images[build_config.default_python]
    return ensure("docker-rootless", (base,))


def serve_on(rootless, folder, build_config, git_server, bind_host="127.0.0.1", **settings):
    config = serve_config(
        folder / "minibinder.toml",
        folder / "data",
        build_config,
        git_server,
        admin_token=ADMIN_TOKEN,
        **settings,
    )
    return ServeProcess(
        config, folder / "serve.log", docker_host=rootless.docker_host, bind_host=bind_host
    )


def test_the_launch_path_on_rootless_docker(rootless, tmp_path, build_config, git_server):
    git_server.create("rootless/demo", {"index.ipynb": NOTEBOOK})
    folder = tmp_path / "serve"
    folder.mkdir()
    serve = serve_on(
        rootless, folder, build_config, git_server, idle_timeout=3600, cull_interval=1
    ).start()
    try:
        log = serve.log_file.read_text()
        assert "rootless Docker" in log and "published on the engine host's loopback" in log
        assert "enforces no session limits" in log  # said at start, on loopback allowed
        ready = launch(serve, "gh/rootless/demo/HEAD")
        record = Store(folder / "data" / "minibinder.sqlite").get_session(
            ready["url"].rstrip("/").rsplit("/", 1)[1]
        )
        assert record.target.startswith("127.0.0.1:")
        kernel = start_kernel(ready)
        assert execute(ready, kernel, "print(6 * 7)")["stdout"].strip() == "42"
        store = Store(folder / "data" / "minibinder.sqlite")
        wait_for(
            lambda: (
                store.fact(
                    "limits enforced by rootless Docker " + rootless.client().version()["Version"]
                )
                == "no"
            ),
            30,
            message="the limits read back from the session",
        )
        # A restart of minibinder finds the session at its published port again.
        serve.kill_9()
        again = serve.again(folder / "serve2.log").start()
        path = ready["url"].split(serve.url, 1)[1]
        assert get_status(f"{again.url}{path}api/status?token={ready['token']}") == 200
        # Culled when idle, through the engine's API (no cgroup files beside rootless Docker).
        again.stop()
        shorter = serve_config(
            folder / "culling.toml",
            folder / "data",
            build_config,
            git_server,
            admin_token=ADMIN_TOKEN,
            idle_timeout=4,
            cull_warning=1,
            cull_interval=1,
        )
        culling = ServeProcess(shorter, folder / "serve3.log", docker_host=rootless.docker_host)
        culling.start()
        wait_for(
            lambda: get_status(f"{culling.url}{path}api/status") == 404,
            60,
            message="the idle rootless session to be culled",
        )
        assert not rootless.client().containers.list(
            filters={"label": f"minibinder.session={record.id}"}, all=True
        )
        culling.stop()
    finally:
        serve.stop()
        for container in rootless.client().containers.list(
            all=True, filters={"label": "minibinder.session"}
        ):
            container.remove(force=True)


def test_an_engine_without_limits_is_refused_on_a_public_bind(
    rootless, tmp_path, build_config, git_server
):
    folder = tmp_path / "public"
    folder.mkdir()
    refused = serve_on(rootless, folder, build_config, git_server, bind_host="0.0.0.0")
    with pytest.raises(RuntimeError, match="allow_unlimited_sessions = true"):
        refused.start()
    allowed = serve_on(
        rootless,
        folder,
        build_config,
        git_server,
        bind_host="0.0.0.0",
        allow_unlimited_sessions=True,
    )
    allowed.start()
    try:
        time.sleep(0.5)
        assert "WARNING" in allowed.log_file.read_text()
    finally:
        allowed.stop()
