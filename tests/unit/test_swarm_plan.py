"""The swarm placement's pure decisions (#23): the service spec, what tasks say, seats,
registry names and credentials; and how reach, reconcile and admission take a swarm."""

import pytest

from minibinder.engines import decide_reach
from minibinder.errors import ConfigError, QuotaExceeded
from minibinder.placement import SessionContainer
from minibinder.sessions.admission import Occupancy, check_admission
from minibinder.sessions.launcher import SESSION_LABEL
from minibinder.sessions.reconcile import endpoint_of, plan_reconcile
from minibinder.settings_load import load_config
from minibinder.store import SessionRecord
from minibinder.swarm.plan import (
    found_entry,
    pushed_name,
    read_credentials,
    seats,
    service_spec,
    view_of,
)

from .test_engines import facts

GIB = 2**30
CONTAINER = SessionContainer(
    image="mb-demo:abc",
    name="minibinder-session-s1",
    command=["jupyter", "lab"],
    environment={"JUPYTER_TOKEN": "t"},
    labels={SESSION_LABEL: "s1"},
    user="1000",
    mem_limit=2 * GIB,
    mem_reservation=GIB,
    nano_cpus=10**9,
    pids_limit=512,
    port=8888,
    reach="node",
)


def node(node_id, state="ready", address="10.0.0.1", memory=8 * GIB, availability="active"):
    return {
        "ID": node_id,
        "Description": {"Hostname": f"host-{node_id}", "Resources": {"MemoryBytes": memory}},
        "Status": {"State": state, "Addr": address},
        "Spec": {"Availability": availability},
    }


def task(index, state, node_id="n1", port=30001, container="c1", desired="running"):
    return {
        "Version": {"Index": index},
        "NodeID": node_id,
        "DesiredState": desired,
        "Status": {
            "State": state,
            "ContainerStatus": {"ContainerID": container} if container else {},
            "PortStatus": {"Ports": [{"TargetPort": 8888, "PublishedPort": port}]},
        },
    }


NODES = {"n1": node("n1"), "n2": node("n2", address="10.0.0.2")}


def test_the_service_carries_the_session_limits_and_publishes_on_its_node():
    spec = service_spec(CONTAINER, "reg:5000/mb-demo@sha256:1")
    template = spec["TaskTemplate"]
    assert template["ContainerSpec"]["Image"] == "reg:5000/mb-demo@sha256:1"
    assert template["ContainerSpec"]["Args"] == ["jupyter", "lab"]  # the entrypoint stays
    assert template["ContainerSpec"]["CapabilityDrop"] == ["ALL"]
    assert template["ContainerSpec"]["Env"] == ["JUPYTER_TOKEN=t"]
    assert template["Resources"] == {
        "Limits": {"MemoryBytes": 2 * GIB, "NanoCPUs": 10**9, "Pids": 512},
        "Reservations": {"MemoryBytes": GIB},
    }
    assert template["RestartPolicy"]["Condition"] == "on-failure"
    assert spec["Mode"] == {"Replicated": {"Replicas": 1}}
    assert spec["EndpointSpec"]["Ports"] == [
        {"Protocol": "tcp", "TargetPort": 8888, "PublishMode": "host"}
    ]


@pytest.mark.parametrize(
    "tasks, nodes, expected",
    [
        ([], NODES, ("starting", "")),
        ([task(1, "preparing", container="")], NODES, ("starting", "")),
        ([task(1, "running")], NODES, ("running", "10.0.0.1:30001")),
        ([task(1, "running", node_id="n2", port=30002)], NODES, ("running", "10.0.0.2:30002")),
        ([task(1, "complete", desired="shutdown")], NODES, ("ended", "")),
        ([task(1, "failed")], NODES, ("starting", "")),  # restarted on failure
        ([task(1, "running")], {"n1": node("n1", state="down")}, ("lost", "")),
        ([task(1, "running")], {}, ("lost", "")),  # the node was removed
        # The swarm already placed a new task elsewhere: the old one on the dead node counts.
        ([task(1, "running"), task(2, "running", node_id="n2")],
         {"n1": node("n1", state="down"), "n2": NODES["n2"]}, ("lost", "")),
    ],
)  # fmt: skip
def test_what_the_tasks_say(tasks, nodes, expected):
    view = view_of(tasks, nodes, 8888)
    assert (view.state, view.target) == expected


def test_a_service_found_in_the_reconcilers_shape():
    service = {"ID": "svc", "Spec": {"Labels": {SESSION_LABEL: "s1", "minibinder.reach": "node"}}}
    running = found_entry(service, view_of([task(1, "running")], NODES, 8888))
    assert running["State"] == "running" and running["Node"] == "host-n1 10.0.0.1"
    assert endpoint_of(running, "unused") == "10.0.0.1:30001"
    done = found_entry(service, view_of([task(1, "complete", desired="shutdown")], NODES, 8888))
    assert (done["State"], done["EndReason"]) == ("exited", "shut down")


def test_seats_count_reservations_node_by_node():
    nodes = [
        node("a", memory=5 * GIB),
        node("b", memory=3 * GIB),
        node("c", state="down"),
        node("d", availability="drain"),
    ]
    # (5 - 1) + (3 - 1) GiB of 1 GiB reservations; down and drained nodes have no room.
    assert seats(nodes, GIB, GIB) == 6
    assert seats([], GIB, GIB) == 0


def test_admission_asks_the_clusters_seats():
    config = load_config(overrides={"max_sessions": 0})
    full = Occupancy(sessions=6, repo_sessions=0, host_memory=64 * GIB, seats=6)
    with pytest.raises(QuotaExceeded, match="room for 6"):
        check_admission("gh/o/r/HEAD", full, config)
    check_admission("gh/o/r/HEAD", Occupancy(5, 0, 1, seats=6), config)  # host memory ignored


def record(session_id, node="host-n1 10.0.0.1", state="running"):
    return SessionRecord(
        session_id,
        "t",
        "svc",
        "10.0.0.1:30001",
        "img",
        "gh",
        "o/r/HEAD",
        "",
        "",
        state,
        1.0,
        1.0,
        node=node,
    )


@pytest.mark.parametrize(
    "found_state, found_node, reason",
    [
        ("lost", "host-n1 10.0.0.1", "node lost"),
        ("running", "host-n2 10.0.0.2", "moved to another node"),
        ("exited", "host-n1 10.0.0.1", "shut down"),
    ],
)
def test_reconcile_ends_a_session_whose_node_is_lost(found_state, found_node, reason):
    found = {
        "Id": "svc",
        "State": found_state,
        "Node": found_node,
        "EndReason": "shut down",
        "Endpoint": "10.0.0.2:30009",
        "Labels": {SESSION_LABEL: "s1", "minibinder.reach": "node"},
    }
    plan = plan_reconcile([record("s1")], [found], "net", 10_000.0, grace=90)
    assert plan.stop == [("s1", reason)]


def test_a_swarm_reaches_sessions_on_their_node_whatever_session_reach_says():
    for setting in ("auto", "network", "published"):
        assert decide_reach(facts(), setting, "swarm") == "node"
    assert decide_reach(facts(), "auto", "local") == "network"


def test_registry_names_and_credentials():
    assert pushed_name("reg:5000", "mb-demo:abc") == ("reg:5000/mb-demo", "abc")
    assert pushed_name("reg:5000", "lab/mb-demo") == ("reg:5000/lab/mb-demo", "latest")
    assert read_credentials("robot:s3cret:with-colon\n", "/f") == ("robot", "s3cret:with-colon")
    for bad in ("", "no-colon", ":hunter2", "robot:"):
        with pytest.raises(ConfigError) as raised:
            read_credentials(bad, "/etc/minibinder/registry")
        assert "/etc/minibinder/registry" in str(raised.value)
        assert bad not in str(raised.value) or bad == ""


def test_swarm_placement_needs_a_registry():
    with pytest.raises(ConfigError, match="needs registry"):
        load_config(overrides={"placement": "swarm"})
    assert load_config(overrides={"placement": "swarm", "registry": "reg.lab:5000"}).registry
    with pytest.raises(ConfigError, match="registry"):
        load_config(overrides={"registry": "https://reg.lab/"})
