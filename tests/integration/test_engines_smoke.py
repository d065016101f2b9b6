"""What each container engine on this host does with what minibinder asks of it (issue 20).

Every test runs on the host's rootful Docker (the baseline), rootless Docker, rootful Podman and
rootless Podman, each reached through its Docker API with the Docker SDK at 1.41, and records
what it found (printed under "measured" at the end of the run). The assertions are the facts
the next design rests on; the expectations that depend on this host's kind (cgroup v1, root
without CAP_SYS_RESOURCE) say so.

Network traffic goes only to 127.0.0.1 and to containers these tests started: a rootless
engine's container address is never connected to (on this host it names an address on a
rootful engine's bridge, i.e. somebody else's container).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import docker
import pytest

from minibinder.settings_load import load_config

from ..support import engines
from ..support.engines import LABEL

BASE_IMAGE = load_config().base_images[load_config().default_python]  # minibinder-base:py3.11
CGROUP_V2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()
MEMORY = 128 * 2**20
PIDS = 64
# Twice the memory limit, every page touched (a bytearray alone may stay untouched zero pages).
OVER_THE_LIMIT = f"b = bytearray({2 * MEMORY}); b[::4096] = b'x' * {2 * MEMORY // 4096}"


@pytest.fixture(scope="module", params=engines.NAMES)
def engine(request):
    """The engine, started unless it answers, with the base image loaded; what an interrupted
    earlier run left is removed first."""
    found = engines.ensure(request.param, images=(BASE_IMAGE,))
    client = found.client()
    engines.remove_labelled(client)
    yield found, client
    left = engines.remove_labelled(client)
    client.close()
    assert not left, f"left behind on {found.name}: {left}"


@pytest.fixture
def run_id(engine):
    """A label value of this test's own; whatever carries it goes at the end of the test."""
    value = secrets.token_hex(4)
    yield value
    engines.remove_labelled(engine[1], value)


def start_server(engine, client, run_id, **settings) -> docker.models.containers.Container:
    """The base image's python3 serving HTTP on 8000, as minibinder starts a session: uid 1000,
    no capabilities, no-new-privileges, memory, pids and CPU limits, the port published on the
    engine host's loopback only."""
    options = dict(
        detach=True,
        user="1000",
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        mem_limit=MEMORY,
        memswap_limit=MEMORY,
        pids_limit=PIDS,
        nano_cpus=500_000_000,
        ports={"8000/tcp": ("127.0.0.1", None)},
        labels={LABEL: run_id},
        name=f"mbengines-{engine.name}-{run_id}",
    )
    options.update(engine.run_defaults())
    options.update(settings)
    return client.containers.run(BASE_IMAGE, ["python3", "-m", "http.server", "8000"], **options)


def http_status(url: str, timeout: float = 30) -> int | None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.2)


def exec_output(container, command: str) -> tuple[int, str]:
    exit_code, output = container.exec_run(["sh", "-c", command], user="1000")
    return exit_code, output.decode(errors="replace").strip()


def test_api_version_identity_and_image_names(engine, measured):
    """What `version` and `info` say about the engine: how minibinder can tell which it is
    talking to, and whether it claims to enforce limits."""
    engine, client = engine
    version, info = client.version(), client.info()
    assert version["ApiVersion"] == "1.41"
    component = version["Components"][0]["Name"]
    claims = {key: info.get(key) for key in ("MemoryLimit", "PidsLimit", "CpuCfsQuota")}
    rootless_marks = {
        "SecurityOptions name=rootless": "name=rootless" in info.get("SecurityOptions", []),
        "Rootless": info.get("Rootless"),  # Podman's own key
    }
    listed = client.images.get(BASE_IMAGE)  # found by the name it was loaded under
    assert engine.image(BASE_IMAGE) in listed.tags
    measured(
        f"{engine.name}: API {version['ApiVersion']} (server {version['Version']}, min "
        f"{version.get('MinAPIVersion')}), component {component!r}; info claims {claims}, "
        f"cgroup driver {info.get('CgroupDriver')!r} v{info.get('CgroupVersion')}, "
        f"rootless marks {rootless_marks}; {BASE_IMAGE} is listed as {listed.tags}"
    )
    assert (component == "Podman Engine") == engine.podman
    if engine.podman:
        assert bool(info.get("Rootless")) == engine.rootless
    else:
        assert rootless_marks["SecurityOptions name=rootless"] == engine.rootless
    if engine.rootless and not CGROUP_V2:
        # Rootless Docker says it cannot limit; rootless Podman claims it can, and cannot.
        expected = engine.podman
        assert claims == {"MemoryLimit": expected, "PidsLimit": expected, "CpuCfsQuota": expected}


def test_published_port_answers_and_the_bridge_address_only_where_rootful(engine, run_id, measured):
    engine, client = engine
    started = time.monotonic()
    container = start_server(engine, client, run_id)
    container.reload()
    network = container.attrs["NetworkSettings"]
    bindings = network["Ports"]["8000/tcp"]
    assert [binding["HostIp"] for binding in bindings] == ["127.0.0.1"]
    port = int(bindings[0]["HostPort"])
    assert http_status(f"http://127.0.0.1:{port}/") == 200
    ready = time.monotonic() - started

    address = network["IPAddress"] or next(iter(network["Networks"].values()))["IPAddress"]
    route = subprocess.run(["ip", "route", "get", address], capture_output=True, text=True)
    host_namespace = os.readlink("/proc/self/ns/net")
    bridge_namespace = engine.bridge_network_namespace()
    if engine.rootless:
        # The container's bridge is in a namespace of the engine's own: the host has no route
        # into it, and the address it reports is not a way to the container from here.
        assert bridge_namespace != host_namespace
        reach = "not connected to (another namespace)"
    else:
        assert bridge_namespace == host_namespace
        assert http_status(f"http://{address}:8000/", timeout=10) == 200
        reach = "answers 200 from the host"
    measured(
        f"{engine.name}: published {bindings} answers 200 ({ready:.1f} s from create); "
        f"container address {address} {reach}; host route: {route.stdout.split(' uid')[0]}"
    )


def test_limits_are_enforced_only_where_the_engine_has_cgroups(engine, run_id, measured):
    engine, client = engine
    container = start_server(engine, client, run_id)
    host_config = container.attrs["HostConfig"]
    recorded = {key: host_config[key] for key in ("Memory", "PidsLimit", "NanoCpus")}
    _, memory_limit = exec_output(
        container,
        "cat /sys/fs/cgroup/memory.max 2>/dev/null || "
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
    )
    _, pids_limit = exec_output(
        container,
        "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max 2>&1",
    )
    # Past the limits: twice the memory (every page touched), then more processes than allowed.
    memory_code, memory_said = exec_output(
        container, f"python3 -c \"{OVER_THE_LIMIT}; print('allocated')\""
    )
    _, pids_said = exec_output(
        container, f"for i in $(seq 1 {2 * PIDS}); do sleep 3 & done 2>&1 | tail -n 1"
    )
    memory_enforced = memory_code != 0 and "allocated" not in memory_said
    pids_enforced = "fork" in pids_said.lower() or "resource" in pids_said.lower()
    measured(
        f"{engine.name}: engine records {recorded}; inside: memory limit {memory_limit}, "
        f"pids.max {pids_limit!r}; {2 * MEMORY >> 20} MiB allocation "
        f"{'killed (exit ' + str(memory_code) + ')' if memory_enforced else 'succeeded'}; "
        f"{2 * PIDS} processes {'refused' if pids_enforced else 'all started'}"
    )
    if not engine.rootless:
        assert memory_limit == str(MEMORY) and pids_limit == str(PIDS)
        assert memory_enforced and pids_enforced
    elif not CGROUP_V2:
        # Rootless on a cgroup v1 host: no limit at all, whatever the engine records.
        assert not memory_enforced and not pids_enforced
        if engine.podman:
            assert recorded == {"Memory": 0, "PidsLimit": 0, "NanoCpus": 0}  # dropped, visibly
        else:
            assert recorded["Memory"] == MEMORY  # recorded, silently not enforced


def test_events_report_oom_and_die(engine, run_id, measured):
    """A container where a process allocates twice the memory: where limits are enforced the
    kernel kills it and the engine says `oom` then `die`; elsewhere it exits 0 and only `die`
    comes."""
    engine, client = engine
    since = int(time.time()) - 1
    got: list[str] = []

    def listen():
        stream = client.events(
            since=since,
            until=int(time.time()) + 60,
            decode=True,
            filters={"label": f"{LABEL}={run_id}", "type": "container"},
        )
        for event in stream:
            got.append(event.get("status") or event.get("Action", "?"))
            if got[-1] == "die":
                break

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    options = dict(
        detach=True,
        user="1000",
        mem_limit=MEMORY,
        memswap_limit=MEMORY,
        labels={LABEL: run_id},
        name=f"mbengines-oom-{run_id}",
    )
    options.update(engine.run_defaults())
    # The allocating process is not the container's first, as a kernel is not in a session:
    # when the first process is the one killed, containerd (cgroup v1) can miss the `oom` as
    # the container ends with it (CI saw exit 137 with no `oom` and OOMKilled false, once).
    over = f'python3 -c "{OVER_THE_LIMIT}"; code=$?; sleep 2; exit $code'
    container = client.containers.run(BASE_IMAGE, ["sh", "-c", over], **options)
    status = container.wait(timeout=60)
    container.reload()
    listener.join(timeout=70)
    oom_killed = container.attrs["State"]["OOMKilled"]
    measured(
        f"{engine.name}: over-limit container exit {status['StatusCode']}, OOMKilled "
        f"{oom_killed}; events (label filter): {got}"
    )
    assert "die" in got
    if not engine.rootless:
        assert status["StatusCode"] == 137  # killed by the kernel's OOM killer
        if engine.podman:
            # Podman 4.3 (runc, cgroup v1) reports neither: the 137 is all there is.
            assert "oom" not in got and not oom_killed
        else:
            assert "oom" in got and oom_killed
    elif not CGROUP_V2:
        assert status["StatusCode"] == 0 and "oom" not in got


def test_stats_of_one_container(engine, run_id, measured):
    """The stats API where cgroup files are not readable by minibinder: what it reports for
    one idle container, and how long one call takes (the culler makes one per session)."""
    engine, client = engine
    container = start_server(engine, client, run_id)
    assert http_status(f"http://127.0.0.1:{published_port(container)}/") == 200
    timings = {}
    for one_shot in (False, True):  # False: two samples a second apart, for the CPU delta
        started = time.monotonic()
        stats = client.api.stats(container.id, stream=False, one_shot=one_shot)
        timings[f"one_shot={one_shot}"] = f"{time.monotonic() - started:.2f} s"
    memory = stats.get("memory_stats", {})
    cpu = stats.get("cpu_stats", {}).get("cpu_usage", {}).get("total_usage")
    measured(
        f"{engine.name}: stats call {timings}: memory usage {memory.get('usage')} limit "
        f"{memory.get('limit')}, pids {stats.get('pids_stats')}, cpu total {cpu}"
    )
    if not engine.rootless:
        assert memory["limit"] == MEMORY and 0 < memory["usage"] < MEMORY
    elif not CGROUP_V2:
        # The container has no cgroup of its own: the numbers are those of the cgroup the
        # engine runs in (here the whole machine's share), not the container's.
        assert memory.get("usage", 0) > MEMORY or not memory.get("usage")


def published_port(container) -> int:
    container.reload()
    return int(container.attrs["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostPort"])


def test_labels_and_label_filters(engine, run_id, measured):
    engine, client = engine
    session = f"{LABEL}.session"
    options = dict(detach=True, user="1000", **engine.run_defaults())
    first = client.containers.run(
        BASE_IMAGE, ["sleep", "300"], labels={LABEL: run_id, session: "a"}, **options
    )
    second = client.containers.run(
        BASE_IMAGE, ["true"], labels={LABEL: run_id, session: "b"}, **options
    )
    second.wait(timeout=30)

    def names(**filters) -> set[str]:
        return {c.id for c in client.containers.list(**filters)}

    both = names(all=True, filters={"label": f"{LABEL}={run_id}"})
    running = names(filters={"label": f"{LABEL}={run_id}"})
    by_key = names(all=True, filters={"label": [f"{LABEL}={run_id}", session]})
    anded = names(all=True, filters={"label": [f"{LABEL}={run_id}", f"{session}=a"]})
    none = names(all=True, filters={"label": f"{LABEL}=not-{run_id}"})
    first.reload()
    labels = first.labels
    measured(
        f"{engine.name}: label filters all={len(both)} running={len(running)} key-only="
        f"{len(by_key)} and={len(anded)} wrong-value={len(none)}; container labels also carry "
        f"the image's: {sorted(set(labels) - {LABEL, session})}"
    )
    assert both == {first.id, second.id} and running == {first.id}
    assert by_key == both and anded == {first.id} and not none
    assert labels[LABEL] == run_id and labels[session] == "a"


def test_build_from_the_base_image(engine, run_id, tmp_path, measured):
    """A tiny Dockerfile FROM the base image by its short name, through the engine's builder
    (Podman: Buildah behind the compat API)."""
    engine, client = engine
    (tmp_path / "Dockerfile").write_text(
        f"FROM {BASE_IMAGE}\nRUN echo built-{run_id} > /tmp/marker\nUSER 1000\n"
    )
    tag = f"mbengines-build:{run_id}"
    started = time.monotonic()
    lines = []
    for chunk in client.api.build(
        path=str(tmp_path), tag=tag, labels={LABEL: run_id}, rm=True, forcerm=True, decode=True
    ):
        lines.append(chunk.get("stream") or chunk.get("error") or json.dumps(chunk))
        assert "error" not in chunk, "".join(lines)
    took = time.monotonic() - started
    image = client.images.get(tag)
    output = client.containers.run(
        image.id, ["cat", "/tmp/marker"], labels={LABEL: run_id}, **engine.run_defaults()
    )
    assert output.decode().strip() == f"built-{run_id}"
    assert image.labels[LABEL] == run_id
    listed = [i.id for i in client.images.list(filters={"label": f"{LABEL}={run_id}"})]
    measured(
        f"{engine.name}: build took {took:.1f} s; tagged {image.tags}; "
        f"label filter lists it: {image.id in listed}"
    )
    assert image.id in listed


def test_what_a_container_needs_to_start_at_all(engine, run_id, measured):
    """Started with no ulimits of minibinder's: fine everywhere except rootful Podman on a host
    whose root may not raise a hard limit (no CAP_SYS_RESOURCE, as in this sandbox). Podman
    writes nofile=1048576 (and nproc=1048576 when only nofile is given) into the OCI config;
    runc may not raise past the service's hard limits (here nofile 20000, nproc 32768) and
    fails. Both limits given within those (`Engine.run_defaults`) start."""
    engine, client = engine
    may_raise_limits = bool(int(_capabilities(), 16) & (1 << 24))  # CAP_SYS_RESOURCE

    def start(**options) -> str:
        try:
            container = client.containers.run(
                BASE_IMAGE,
                ["sh", "-c", "ulimit -n; ulimit -Hn"],
                detach=True,
                labels={LABEL: run_id},
                user="1000",
                **options,
            )
        except docker.errors.APIError as error:
            return f"refused: {error.explanation}"
        container.wait(timeout=30)
        return "starts, nofile soft/hard " + "/".join(container.logs().decode().split())

    bare = start()
    defaults = engine.run_defaults()
    with_defaults = start(**defaults) if defaults else bare
    named = [f"{u['Name']}={u['Hard']}" for u in defaults.get("ulimits", [])]
    measured(f"{engine.name}: without ulimits: {bare}; with {named or 'none'}: {with_defaults}")
    assert with_defaults.startswith("starts")
    if engine.podman and not engine.rootless and not may_raise_limits:
        assert bare.startswith("refused") and "rlimit" in bare
    else:
        assert bare.startswith("starts")


def _capabilities() -> str:
    status = Path("/proc/self/status").read_text()
    return next(line.split()[1] for line in status.splitlines() if line.startswith("CapEff:"))
