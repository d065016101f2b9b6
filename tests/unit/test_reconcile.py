"""Restart safety as a pure plan: which containers and records go, which routes change."""

from minibinder.placement import LocalPlacement
from minibinder.sessions.launcher import INSTANCE_LABEL, SESSION_LABEL
from minibinder.sessions.reconcile import ReconcilePlan, plan_reconcile
from minibinder.store import SessionRecord

NET = "minibinder-sessions"
NOW = 10_000.0


def record(session_id, state="running", target="10.0.0.2:8888", created=1.0):
    return SessionRecord(
        session_id,
        "t",
        f"c-{session_id}",
        target,
        "img",
        "gh",
        "o/r/HEAD",
        "",
        "",
        state,
        created,
        created,
    )


def container(session_id, state="running", address="10.0.0.2"):
    networks = {NET: {"IPAddress": address}} if address else {}
    return {
        "Id": f"c-{session_id}",
        "State": state,
        "Labels": {SESSION_LABEL: session_id, INSTANCE_LABEL: "me"},
        "NetworkSettings": {"Networks": networks},
    }


def plan(records, containers):
    return plan_reconcile(records, containers, NET, NOW, grace=90)


def test_a_healthy_session_is_left_alone():
    result = plan([record("a")], [container("a")])
    assert (result.remove_containers, result.stop, result.new_targets, result.drop_records) == (
        [],
        [],
        {},
        [],
    )


def test_a_container_nobody_holds_a_token_for_is_removed():
    assert plan([], [container("x")]).remove_containers == ["c-x"]


def test_an_exited_container_stops_its_session():
    assert plan([record("a")], [container("a", state="exited")]).stop == [("a", "container exited")]


def test_a_server_the_engine_is_restarting_keeps_its_session():
    class Engine:
        def containers(self, label):
            return [container("a", state="restarting", address="")]

    found = LocalPlacement(Engine(), NET).found("me")  # type: ignore[arg-type]
    assert [c["State"] for c in found] == ["starting"]
    result = plan([record("a")], found)
    assert (result.stop, result.new_targets, result.drop_records) == ([], {}, [])


def test_a_new_address_after_a_docker_restart_moves_the_route():
    assert plan([record("a")], [container("a", address="10.0.0.9")]).new_targets == {
        "a": "10.0.0.9:8888"
    }


def test_a_record_without_its_container_is_dropped():
    assert plan([record("a"), record("b")], [container("a")]).drop_records == ["b"]


def test_a_launch_in_progress_belongs_to_its_launcher():
    young = record("a", state="launching", target="", created=NOW - 10)
    assert plan([young], [container("a")]) == ReconcilePlan()
    assert plan([young], []) == ReconcilePlan()


def test_an_abandoned_launch_is_adopted_if_it_answers_or_stopped():
    old = record("a", state="launching", target="", created=NOW - 1000)
    assert plan([old], [container("a")]).maybe_adopt == {"a": ("c-a", "10.0.0.2:8888")}
    assert plan([old], [container("a", address="")]).stop == [("a", "launch abandoned")]
