"""minibinder across a Docker Swarm (#23): three namespaced Docker daemons on this machine, a
registry on their bridge, `minibinder serve` in the host namespace talking to the manager.

In order (one cluster for the module): six sessions spread over the nodes, each running a cell
over the proxy's WebSocket; `doctor` reads every node's agent; a worker's session ports open to
the manager only, and its sessions reach neither the node nor the manager; an out-of-memory
kill on a worker is counted; a session over its CPU budget on a worker is culled; a restart of
serve re-adopts them all with the same tokens; a node killed ends its sessions as `node lost`
within one culler round and the next launch lands on a live node.

`minibinder agent` runs as the README says an operator starts it: minibinder's own image
(deploy/Dockerfile, built from this checkout, pushed to the registry) as a global Swarm service
with the node's Docker socket, its network and NET_ADMIN, the cluster key a Swarm secret. The
README's commands are read from the README and run on the manager, with this cluster's
addresses for its example ones and each node's own socket for /var/run/docker.sock (the nodes
share one filesystem here: tests/support/swarm_cluster, `by_node`)."""

from __future__ import annotations

import collections
import re
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from minibinder import __version__
from minibinder.store import Store
from minibinder.swarm.reports import SIGNATURE_HEADER, TIME_HEADER, Report, report_body, sign

from ..support.deploy_image import ROOT, build_minibinder_image
from ..support.jupyter import execute, start_kernel
from ..support.serving import ServeProcess
from ..support.swarm_cluster import SUBNET, SwarmCluster
from .conftest import ADMIN_TOKEN, launch, serve_config, wait_for
from .test_cli import minibinder
from .test_lifecycle import NOTEBOOK, get_status

pytestmark = pytest.mark.swarm
CULL_INTERVAL = 2
AGENT_INTERVAL = 2
CPU_BUDGET = 15  # CPU-seconds: far above what an idle session uses while the module runs


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, build_config):
    cluster = SwarmCluster(tmp_path_factory.mktemp("swarm")).start()
    try:
        cluster.load_images((build_config.base_images[build_config.default_python],))
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def served(cluster, tmp_path_factory, build_config, git_server):
    folder = tmp_path_factory.mktemp("swarm-serve")
    git_server.create("swarm/demo", {"index.ipynb": NOTEBOOK})
    config = serve_config(
        folder / "minibinder.toml",
        folder / "data",
        build_config,
        git_server,
        admin_token=ADMIN_TOKEN,
        placement="swarm",
        registry=cluster.registry,
        cull_interval=CULL_INTERVAL,
        idle_timeout=3600,
        cpu_budget=CPU_BUDGET,
        launch_timeout=180,
    )
    state = {"folder": folder, "config": config, "sessions": []}
    # On every address: the nodes' agents report to it over the cluster's bridge.
    state["serve"] = ServeProcess(
        config, folder / "serve.log", bind_host="0.0.0.0", docker_host=cluster.manager.docker_host
    ).start()
    state["manager_url"] = f"http://{SUBNET}.1:{state['serve'].port}/"
    key_file = folder / "data" / "agent_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    try:
        state["agent_timing"] = start_agent_service(
            cluster, state["manager_url"], key_file, build_config, folder
        )
        yield state
    finally:
        try:
            left = cluster.remove_service(AGENT_SERVICE)
            cluster.manager.docker("secret", "rm", AGENT_SECRET, check=False)
        finally:
            state["serve"].stop()
        assert not left, f"the agent service left containers behind: {left}"


# -- the agent as a global service, as the README starts it -------------------------------------

AGENT_SERVICE, AGENT_SECRET = "minibinder-agent", "minibinder-agent-key"
SERVICE_LABEL = "com.docker.swarm.service.name"  # on every container of a service
CGROUP_READ = (
    "from pathlib import Path; from minibinder.swarm.agent import cpu_of_cgroup; "
    "print(cpu_of_cgroup({!r}, Path('/host/cgroup')))"
)
# The README's example addresses (a manager at 10.0.3.10 with its registry on port 5000).
EXAMPLE_MANAGER, EXAMPLE_REGISTRY = "http://10.0.3.10:8585/", "10.0.3.10:5000"
EXAMPLE_KEY = "/var/lib/minibinder/agent_key"


def readme_agent_commands() -> list[list[str]]:
    """The commands of the README's block that starts the agent service, as written."""
    text = (ROOT / "README.md").read_text()
    start = text.index("\n## Outgrowing one machine\n")
    section = text[start : text.index("\n## ", start + 1)]
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        if "docker service create" in block:
            lines = block.replace("\\\n", " ").splitlines()
            return [shlex.split(line) for line in lines if line.strip() and line[0] != "#"]
    raise AssertionError("the README shows no `docker service create` for the agent")


def for_this_cluster(command: list[str], cluster, manager_url: str, key_file, image: str):
    """The README's command with this cluster's addresses for the example's; each node's own
    engine socket and data for the one path a real node has (`{{.Node.ID}}` picks it)."""
    by_node = f"{cluster.by_node}/{{{{.Node.ID}}}}"
    mounts = {
        "source=/var/run/docker.sock,": f"source={by_node}/docker.sock,",
        "source=/var/lib/docker,": f"source={by_node}/docker-data,",
    }
    changed = []
    for word in command:
        if word == EXAMPLE_MANAGER:
            word = manager_url
        elif word == EXAMPLE_KEY:
            word = str(key_file)
        elif word.startswith(f"{EXAMPLE_REGISTRY}/minibinder:"):
            word = image
        for path, here in mounts.items():
            word = word.replace(path, here)
        assert "10.0.3.10" not in word, f"an example address the test does not know: {word}"
        changed.append(word)
    return changed


def start_agent_service(cluster, manager_url: str, key_file, build_config, folder) -> str:
    """Build and push the image, run the README's commands; what it took, to report."""
    started = time.monotonic()
    local = f"{build_config.image_prefix}minibinder-itself:test"
    built = build_minibinder_image(folder / "image", local, build_config.extra_ca_file)
    image = cluster.push_image(local, f"minibinder:{__version__}")
    pushed = time.monotonic()
    commands = [
        for_this_cluster(command, cluster, manager_url, key_file, image)
        for command in readme_agent_commands()
    ]
    assert [command[:3] for command in commands] == [
        ["docker", "secret", "create"],
        ["docker", "service", "create"],
    ], commands
    secret, service = commands
    # Never this machine's own engine (the shared daemon) for an agent of the test's cluster.
    sources = [part for word in service for part in word.split(",") if part.startswith("source=")]
    assert not any(s.startswith(("source=/var/run/", "source=/var/lib/")) for s in sources)
    # Not waiting in the CLI (it would wait for ever for a task that cannot start): here.
    service = [*service[:3], "--detach", *service[3:], "--interval", str(AGENT_INTERVAL)]
    for command in (secret, service):
        cluster.manager.docker(*command[1:])
    cluster.wait_for_service(AGENT_SERVICE)
    # The image's VOLUME gives each agent container an anonymous volume: `service rm` must
    # remove it with the container (the fixture's teardown checks).
    assert all(cluster.service_volumes(AGENT_SERVICE).values())
    return (
        f"swarm: agent image built in {built:.1f} s, in the registry "
        f"{pushed - started:.1f} s after the start, the global service running on 3 nodes "
        f"{time.monotonic() - pushed:.1f} s later"
    )


def store_of(served) -> Store:
    return Store(served["folder"] / "data" / "minibinder.sqlite")


def session_id(ready) -> str:
    return ready["url"].rstrip("/").rsplit("/", 1)[1]


def test_six_sessions_spread_over_the_nodes(cluster, served, measured):
    serve = served["serve"]
    started = time.monotonic()
    readies = [launch(serve, "gh/swarm/demo/HEAD")]  # builds and pushes the image
    with ThreadPoolExecutor(5) as pool:  # then five at once, as a room would
        readies += list(pool.map(lambda _: launch(serve, "gh/swarm/demo/HEAD"), range(5)))
    measured(f"swarm: 6 launches (one build, one push) ready in {time.monotonic() - started:.1f} s")
    served["sessions"] = readies
    store = store_of(served)
    records = [store.get_session(session_id(ready)) for ready in readies]
    by_node = collections.Counter(record.node for record in records)
    addresses = {node.address for node in cluster.nodes}
    assert {name.rsplit(" ", 1)[1] for name in by_node} == addresses, by_node
    assert all(record.target.split(":")[0] in addresses for record in records)
    # The operator sees where each session runs: the shell, and per-node gauges.
    listed = minibinder(
        "sessions", config_file=served["config"], env={"DOCKER_HOST": cluster.manager.docker_host}
    )
    assert listed.stdout.splitlines()[0].split()[-1] == "NODE", listed.stdout + listed.stderr
    assert {line.split()[-1] for line in listed.stdout.splitlines()[1:]} == addresses
    with urllib.request.urlopen(f"{serve.url}/metrics", timeout=10) as response:
        metrics = response.read().decode()
    for name, count in by_node.items():
        assert f'minibinder_node_sessions_running{{node="{name}"}} {count}.0' in metrics
    for ready in readies:
        kernel = start_kernel(ready)
        assert execute(ready, kernel, "print(6 * 7)")["stdout"].strip() == "42"
    # The images went through the registry, pulled by digest.
    service = cluster.manager.client().services.get(records[0].container_id)
    image = service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    assert image.startswith(f"{cluster.registry}/") and "@sha256:" in image
    limits = service.attrs["Spec"]["TaskTemplate"]["Resources"]["Limits"]
    assert limits["Pids"] == 512 and limits["MemoryBytes"] == 2 * 2**30


def test_doctor_checks_the_swarm(cluster, served, measured):
    measured(served["agent_timing"])
    checked = minibinder(
        "doctor", config_file=served["config"], env={"DOCKER_HOST": cluster.manager.docker_host}
    )
    lines = checked.stdout.splitlines()
    assert any(
        line.startswith("ok    swarm manager: this engine manages a swarm of 3") for line in lines
    ), checked.stdout
    assert any(
        line.startswith(f"ok    registry: {cluster.registry} takes pushes") for line in lines
    ), checked.stdout
    assert "ok    swarm nodes: 3 ready" in lines, checked.stdout
    # What only the nodes can tell, from their agents' reports.
    assert "ok    agents: 3 of 3 ready node(s) report" in lines, checked.stdout
    assert any(line.startswith("ok    agent version: every agent runs") for line in lines)
    assert "ok    no-new-privileges: sessions run with it on every node" in lines, checked.stdout
    assert any(
        line.startswith("ok    node rules: egress rules and manager-only") for line in lines
    ), checked.stdout
    assert any(
        line.startswith("ok    nodes can pull: every reporting node pulled") for line in lines
    ), checked.stdout
    # The agents' CPU readings reached the sessions (what the culler holds to cpu_budget), those
    # on the workers too: read there by the agent's container, from the node's cgroups.
    running = store_of(served).sessions("running")
    for record in running:
        assert record.cpu_checked_at > 0 and 0 < record.cpu_seconds < CPU_BUDGET, record
    assert {r.node.rsplit(" ", 1)[1] for r in running} >= {w.address for w in cluster.workers}
    # From the cgroup files the service mounts (not the engine's stats, the agent's fallback).
    worker = cluster.workers[0]
    record = next(r for r in running if r.node.endswith(worker.address))
    client = worker.client()
    (agent,) = client.containers.list(filters={"label": f"{SERVICE_LABEL}={AGENT_SERVICE}"})
    (container,) = client.containers.list(filters={"label": f"minibinder.session={record.id}"})
    read = agent.exec_run(["python", "-c", CGROUP_READ.format(container.id)])
    assert read.exit_code == 0 and float(read.output) > 0, read
    # The agents' rules went into each node's own network (the service's "host" network),
    # never into this machine's.
    for node in cluster.nodes:
        assert "MB-agent" in cluster.in_node(node, "iptables", "-w", "-S").stdout, node.name
    assert (
        "MB-agent"
        not in subprocess.run(
            ["iptables", "-w", "-S"], capture_output=True, text=True, check=True
        ).stdout
    )


def post_report(served, key: bytes, sent_at: str, body: bytes) -> tuple[int, str]:
    request = urllib.request.Request(
        f"{served['manager_url']}agent/report",
        data=body,
        method="POST",
        headers={TIME_HEADER: sent_at, SIGNATURE_HEADER: sign(key, sent_at, body)},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_a_report_is_taken_only_signed_with_the_cluster_key_and_once(served):
    key = (served["folder"] / "data" / "agent_key").read_text().strip().encode()
    body = report_body(Report("test-node", "nowhere", "0", None, ()))
    sent_at = f"{time.time():.6f}"
    status, said = post_report(served, b"not the key" * 4, sent_at, body)
    assert status == 403 and "does not match the cluster key" in said, said
    assert key.decode() not in (served["folder"] / "serve.log").read_text()
    assert post_report(served, key, sent_at, body)[0] == 200
    status, said = post_report(served, key, sent_at, body)  # the same report again
    assert status == 403 and "replay" in said, said


def on_worker(cluster, served) -> list[tuple[dict, object]]:
    """(ready event, record) of the running sessions on the first worker."""
    store, worker = store_of(served), cluster.workers[0]
    found = [(ready, store.get_session(session_id(ready))) for ready in served["sessions"]]
    return [(r, record) for r, record in found if record and record.node.endswith(worker.address)]


PROBE = """
import socket
def probe(host, port):
    try:
        socket.create_connection((host, port), timeout=3).close()
        return "open"
    except OSError as error:
        return type(error).__name__
print(probe({node!r}, 7946), probe({manager!r}, {port}))
"""


def reaches(cluster, node, host: str, port: int) -> bool:
    code = f"import socket; socket.create_connection(({host!r}, {port}), timeout=3).close()"
    return cluster.in_node(node, sys.executable, "-c", code, check=False).returncode == 0


def test_a_workers_sessions_reach_neither_node_nor_manager_and_only_the_manager_them(
    cluster, served
):
    worker, port = cluster.workers[0], served["serve"].port
    ready, record = on_worker(cluster, served)[0]
    # Listeners that exist: the worker's gossip port (7946) and the manager's minibinder, both
    # reached from the worker's host (its agent reports that way).
    assert reaches(cluster, worker, worker.address, 7946)
    assert reaches(cluster, worker, f"{SUBNET}.1", port)
    kernel = start_kernel(ready)
    said = execute(
        ready, kernel, PROBE.format(node=worker.address, manager=f"{SUBNET}.1", port=port)
    )["stdout"].split()
    assert len(said) == 2 and "open" not in said, said
    # The session's published port on the worker: the manager relays to it; another node
    # cannot open it.
    host, published = record.target.split(":")
    assert reaches(cluster, cluster.manager, worker.address, 7946)  # the node is reachable
    assert not reaches(cluster, cluster.manager, host, int(published))


def test_an_out_of_memory_kill_on_a_worker_is_counted(cluster, served):
    ready, record = on_worker(cluster, served)[0]
    kernel = start_kernel(ready)
    execute(ready, kernel, "x = bytearray(3 * 2**30)", wait=False)  # over the 2 GiB limit
    store = store_of(served)
    wait_for(
        lambda: store.get_session(record.id).oom_count >= 1,
        10 * AGENT_INTERVAL + 10,
        message="the agent's report of the kill",
    )
    with urllib.request.urlopen(f"{served['serve'].url}/metrics", timeout=10) as response:
        metrics = response.read().decode()
    counted = [
        line for line in metrics.splitlines() if line.startswith("minibinder_oom_events_total ")
    ]
    assert counted and float(counted[0].split()[1]) >= 1, counted


def test_a_session_over_its_cpu_budget_on_a_worker_is_culled(cluster, served, measured):
    ready, record = on_worker(cluster, served)[-1]
    kernel = start_kernel(ready)
    burn = (
        "import threading\ndef burn():\n    while True: pass\n"
        "threading.Thread(target=burn, daemon=True).start()"
    )
    execute(ready, kernel, burn, timeout=30)
    store = store_of(served)
    started = time.monotonic()
    wait_for(
        lambda: store.get_session(record.id) is None,
        4 * CPU_BUDGET,
        message="the session over its CPU budget to be culled",
    )
    ended = {row["session"]: row["ended"] for row in store.launches(limit=50)}
    assert ended.get(record.id) == "cpu", ended
    measured(f"swarm: culled for cpu {time.monotonic() - started:.1f} s after the burn began")
    served["sessions"] = [r for r in served["sessions"] if session_id(r) != record.id]


def test_a_restart_of_serve_re_adopts_every_session(cluster, served):
    serve = served["serve"]
    serve.stop()
    again = serve.again(served["folder"] / "serve2.log")
    served["serve"] = again.start()
    time.sleep(CULL_INTERVAL * 2)  # a reconcile round has run
    for ready in served["sessions"]:
        path = ready["url"].split(serve.url, 1)[1]
        status = get_status(f"{again.url}{path}api/status?token={ready['token']}")
        assert status == 200, (ready["url"], status)


def test_a_lost_node_ends_its_sessions(cluster, served):
    store = store_of(served)
    victim = cluster.workers[-1]
    on_victim = [r.id for r in store.sessions("running") if r.node.endswith(victim.address)]
    assert on_victim
    cluster.kill_node(victim)
    wait_for(
        lambda: cluster.node_state_by_address(victim.address) == "down",
        60,
        message="the swarm to see the node down",
    )
    down_at = time.monotonic()
    wait_for(
        lambda: not any(store.get_session(i) for i in on_victim),
        3 * CULL_INTERVAL + 10,
        message="the lost node's sessions to end",
    )
    ended_after = time.monotonic() - down_at
    assert ended_after <= CULL_INTERVAL + 3, ended_after
    ended = {row["session"]: row["ended"] for row in store.launches(limit=50)}
    assert all(ended.get(i) == "node lost" for i in on_victim), ended
    ready = launch(served["serve"], "gh/swarm/demo/HEAD")
    record = store.get_session(session_id(ready))
    assert not record.node.endswith(victim.address)
