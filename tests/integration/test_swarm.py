"""minibinder across a Docker Swarm (#23): three namespaced Docker daemons on this machine, a
registry on their bridge, `minibinder serve` in the host namespace talking to the manager.

In order (one cluster for the module): six sessions spread over the nodes, each running a cell
over the proxy's WebSocket; a restart of serve re-adopts them all with the same tokens; a node
killed ends its sessions as `node lost` within one culler round and the next launch lands on a
live node."""

from __future__ import annotations

import collections
import time
import urllib.request

import pytest

from minibinder.store import Store

from ..support.jupyter import execute, start_kernel
from ..support.serving import ServeProcess
from ..support.swarm_cluster import SwarmCluster
from .conftest import ADMIN_TOKEN, launch, serve_config, wait_for
from .test_cli import minibinder
from .test_lifecycle import NOTEBOOK, get_status

pytestmark = pytest.mark.swarm
CULL_INTERVAL = 2


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
    config = serve_config(folder / "minibinder.toml", folder / "data", build_config, git_server,
                          admin_token=ADMIN_TOKEN, placement="swarm", registry=cluster.registry,
                          cull_interval=CULL_INTERVAL, idle_timeout=3600,
                          launch_timeout=180)  # fmt: skip
    state = {"folder": folder, "config": config, "sessions": []}
    state["serve"] = ServeProcess(config, folder / "serve.log",
                                  docker_host=cluster.manager.docker_host).start()  # fmt: skip
    yield state
    state["serve"].stop()


def store_of(served) -> Store:
    return Store(served["folder"] / "data" / "minibinder.sqlite")


def session_id(ready) -> str:
    return ready["url"].rstrip("/").rsplit("/", 1)[1]


def test_six_sessions_spread_over_the_nodes(cluster, served, measured):
    serve = served["serve"]
    started = time.monotonic()
    readies = [launch(serve, "gh/swarm/demo/HEAD") for _ in range(6)]
    measured(f"swarm: 6 launches (one build, one push) ready in {time.monotonic() - started:.1f} s")
    served["sessions"] = readies
    store = store_of(served)
    records = [store.get_session(session_id(ready)) for ready in readies]
    by_node = collections.Counter(record.node for record in records)
    addresses = {node.address for node in cluster.nodes}
    assert {name.rsplit(" ", 1)[1] for name in by_node} == addresses, by_node
    assert all(record.target.split(":")[0] in addresses for record in records)
    # The operator sees where each session runs: the shell, and per-node gauges.
    listed = minibinder("sessions", config_file=served["config"],
                        env={"DOCKER_HOST": cluster.manager.docker_host})  # fmt: skip
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


def test_doctor_checks_the_swarm(cluster, served):
    checked = minibinder("doctor", config_file=served["config"],
                         env={"DOCKER_HOST": cluster.manager.docker_host})  # fmt: skip
    lines = checked.stdout.splitlines()
    assert any(line.startswith("ok    swarm manager: this engine manages a swarm of 3")
               for line in lines), checked.stdout  # fmt: skip
    assert any(line.startswith(f"ok    registry: {cluster.registry} takes pushes")
               for line in lines), checked.stdout  # fmt: skip
    assert "ok    swarm nodes: 3 ready" in lines, checked.stdout


def test_a_restart_of_serve_re_adopts_every_session(cluster, served):
    serve = served["serve"]
    serve.stop()
    again = ServeProcess(served["config"], served["folder"] / "serve2.log",
                         docker_host=cluster.manager.docker_host)  # fmt: skip
    again.port, again.admin_port, again.url, again.admin_url = (
        serve.port, serve.admin_port, serve.url, serve.admin_url)  # fmt: skip
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
    wait_for(lambda: cluster.node_state_by_address(victim.address) == "down", 60,
             message="the swarm to see the node down")  # fmt: skip
    down_at = time.monotonic()
    wait_for(lambda: not any(store.get_session(i) for i in on_victim), 3 * CULL_INTERVAL + 10,
             message="the lost node's sessions to end")  # fmt: skip
    ended_after = time.monotonic() - down_at
    assert ended_after <= CULL_INTERVAL + 3, ended_after
    ended = {row["session"]: row["ended"] for row in store.launches(limit=50)}
    assert all(ended.get(i) == "node lost" for i in on_victim), ended
    ready = launch(served["serve"], "gh/swarm/demo/HEAD")
    record = store.get_session(session_id(ready))
    assert not record.node.endswith(victim.address)
