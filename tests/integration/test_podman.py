"""minibinder on Podman (#20), through its Docker-compatible socket (`podman system service`,
Debian's podman 4.3), rootful and rootless. Rootless Podman on this cgroup v1 host drops every
limit and puts compat-API containers in a network namespace of its own at addresses that
collide with the rootful engines' (docs/engines-measured.md): its sessions are reached at a
port published on 127.0.0.1, and it is said to enforce no limits.

The launch path end to end: /build (Podman's builder) → ready → a kernel runs a cell over the
proxy's WebSocket → a restart re-adopts → cull → the session's container is gone. Rootful
Podman here starts a container only with nofile and nproc within its service's hard limits:
the test gives them through `session_ulimits`."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from minibinder.cgroups import cgroup_usage
from minibinder.engines import REACH_TEXT
from minibinder.store import Store

from ..support.engines import ensure
from ..support.jupyter import execute, start_kernel
from ..support.serving import ServeProcess
from ..support.sse import events
from .conftest import ADMIN_TOKEN, launch, serve_config, wait_for
from .test_lifecycle import NOTEBOOK, get_status


@pytest.fixture(scope="module", params=["podman", "podman-rootless"])
def any_podman(request, build_config):
    base = build_config.base_images[build_config.default_python]
    return ensure(request.param, (base,))


@pytest.fixture(scope="module")
def podman(build_config):
    base = build_config.base_images[build_config.default_python]
    return ensure("podman", (base,))


def without_cap_sys_resource() -> bool:
    """Whether root here lacks CAP_SYS_RESOURCE (bit 24): runc may then not raise a limit."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return not int(line.split()[1], 16) & (1 << 24)
    return False


def remove_sessions(podman) -> None:
    client = podman.client()
    for container in client.containers.list(all=True, filters={"label": "minibinder.session"}):
        container.remove(force=True, v=True)


def test_the_launch_path_on_podman(any_podman, tmp_path, build_config, git_server):
    podman = any_podman
    git_server.create(f"{podman.name}/demo", {"index.ipynb": NOTEBOOK})
    folder = tmp_path / "serve"
    folder.mkdir()
    ulimits = {} if podman.rootless else podman.hard_limits()
    settings = dict(admin_token=ADMIN_TOKEN, session_ulimits=ulimits, cull_interval=1)
    config = serve_config(
        folder / "minibinder.toml",
        folder / "data",
        build_config,
        git_server,
        idle_timeout=3600,
        **settings,
    )
    serve = ServeProcess(config, folder / "serve.log", docker_host=podman.docker_host).start()
    store = Store(folder / "data" / "minibinder.sqlite")
    try:
        log = serve.log_file.read_text()
        assert ("rootless Podman" in log) == podman.rootless
        assert REACH_TEXT["published" if podman.rootless else "network"] in log
        started = time.monotonic()
        ready = launch(serve, f"gh/{podman.name}/demo/HEAD")
        took = time.monotonic() - started
        record = store.get_session(ready["url"].rstrip("/").rsplit("/", 1)[1])
        client = podman.client()
        (container,) = client.containers.list(filters={"label": f"minibinder.session={record.id}"})
        # Podman lists what it built or loaded under a registry's name; found by the short one.
        assert client.images.get(ready["image"]).id == container.image.id
        if podman.rootless:  # limits dropped (cgroup v1), the session at a published port
            assert container.attrs["HostConfig"]["Memory"] == 0
            assert record.target.startswith("127.0.0.1:")
        else:
            assert container.attrs["HostConfig"]["Memory"] > 0
            # Its cgroup files are where minibinder reads them (no stats API call per session).
            assert cgroup_usage(container.id) is not None
        kernel = start_kernel(ready)
        assert execute(ready, kernel, "print(6 * 7)")["stdout"].strip() == "42"
        label = ("rootless " if podman.rootless else "") + "Podman " + client.version()["Version"]
        enforced = "no" if podman.rootless else "yes"
        wait_for(
            lambda: store.fact(f"limits enforced by {label}") == enforced,
            30,
            message="the limits read back from the session",
        )
        # A restart of minibinder finds the session again.
        serve.kill_9()
        again = serve.again(folder / "serve2.log").start()
        path = ready["url"].split(serve.url, 1)[1]
        assert get_status(f"{again.url}{path}api/status?token={ready['token']}") == 200
        again.stop()
        # Culled when idle.
        shorter = serve_config(
            folder / "culling.toml",
            folder / "data",
            build_config,
            git_server,
            idle_timeout=4,
            cull_warning=1,
            **settings,
        )
        culling = ServeProcess(shorter, folder / "serve3.log", docker_host=podman.docker_host)
        culling.start()
        wait_for(
            lambda: get_status(f"{culling.url}{path}api/status") == 404,
            60,
            message="the idle Podman session to be culled",
        )
        assert not client.containers.list(
            filters={"label": f"minibinder.session={record.id}"}, all=True
        )
        culling.stop()
        print(f"{podman.name}: first launch (build included) {took:.1f} s")
    finally:
        serve.stop()
        remove_sessions(podman)


def test_without_ulimits_the_failure_says_what_to_set(podman, tmp_path, build_config, git_server):
    """Rootful Podman without CAP_SYS_RESOURCE (this host) starts no container unless told its
    limits: the launch fails with runc's error and the setting that fixes it."""
    if not without_cap_sys_resource() or podman.hard_limits()["nofile"] >= 1048576:
        pytest.skip("root here may raise its limits: Podman's nofile=1048576 starts")
    git_server.create("podman/limits", {"index.ipynb": NOTEBOOK})
    config = serve_config(
        tmp_path / "minibinder.toml",
        tmp_path / "data",
        build_config,
        git_server,
        admin_token=ADMIN_TOKEN,
    )
    serve = ServeProcess(config, tmp_path / "serve.log", docker_host=podman.docker_host).start()
    try:
        last = events(f"{serve.url}/build/gh/podman/limits/HEAD")[-1]
        assert last["phase"] == "failed", last
        assert "setting rlimit" in last["message"] and "session_ulimits" in last["message"]
        assert not podman.client().containers.list(
            all=True, filters={"label": "minibinder.session"}
        )
    finally:
        serve.stop()
        remove_sessions(podman)
