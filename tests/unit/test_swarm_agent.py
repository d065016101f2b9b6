"""The agent's reports (signed, checked, refused), what it reads, and what doctor makes of them."""

from __future__ import annotations

import pytest

from minibinder.firewall import inbound_text
from minibinder.swarm.agent import collectable, cpu_of_cgroup, no_new_privileges_of
from minibinder.swarm.health import STALE_SECONDS, agent_findings
from minibinder.swarm.reports import (
    Answer,
    NodeRecord,
    Report,
    ReportError,
    SessionUsage,
    answer_body,
    check_newer,
    parse_answer,
    parse_report,
    report_body,
    sign,
    verify,
)

KEY = b"k" * 64
SESSION = "0123456789abcdef"
REPORT = Report(
    "node1", "w1", "1.0", True, (SessionUsage(SESSION, 12.5, 1),), 10**9, "", "reg/x@sha256:ab", ""
)


def test_a_report_survives_the_wire():
    assert parse_report(report_body(REPORT)) == REPORT
    assert parse_answer(answer_body(Answer("reg/x@sha256:ab", "reg", 80, 70))) == Answer(
        "reg/x@sha256:ab", "reg", 80, 70
    )


def test_a_signed_report_is_taken_within_the_window():
    body = report_body(REPORT)
    verify(KEY, "1000.5", body, sign(KEY, "1000.5", body), now=1030)


@pytest.mark.parametrize(
    "key, sent_at, now, tampered, said",
    [
        (b"other" * 10, "1000", 1000, False, "does not match the cluster key"),
        (KEY, "1000", 1000, True, "does not match the cluster key"),
        (KEY, "1000", 1100, False, "away from the manager's clock"),
        (KEY, "soon", 1000, False, "not a number"),
        (KEY, "nan", 1000, False, "not a number"),
    ],
)
def test_a_report_is_refused(key, sent_at, now, tampered, said):
    body = report_body(REPORT)
    signature = sign(key, sent_at, body)
    if tampered:
        body = body.replace(b"12.5", b"0.0")
    with pytest.raises(ReportError, match=said) as refused:
        verify(KEY, sent_at, body, signature, now)
    assert KEY.decode() not in str(refused.value)


def test_a_signature_past_ascii_is_refused_not_an_error():
    with pytest.raises(ReportError, match="does not match"):
        verify(KEY, "1000", report_body(REPORT), "é" * 64, 1000)


def test_an_answer_counts_only_signed_for_its_report():
    from minibinder.swarm.reports import sign_answer, verify_answer

    answer = b'{"pull": "r.lab/probe:1"}'
    verify_answer(KEY, "sig-1", answer, sign_answer(KEY, "sig-1", answer))
    for key, report, body in (
        (b"x" * 32, "sig-1", answer),
        (KEY, "sig-2", answer),
        (KEY, "sig-1", b'{"pull": "evil.example/x"}'),
    ):
        with pytest.raises(ReportError, match="not signed"):
            verify_answer(
                KEY, "sig-1", answer if body is answer else body, sign_answer(key, report, answer)
            )


def test_the_same_report_twice_is_a_replay():
    last = NodeRecord(1000.0, "w1", "1.0", True, 0, "", "", "")
    check_newer(None, "1000")
    check_newer(last, "1000.1")
    with pytest.raises(ReportError, match="replay"):
        check_newer(last, "1000")


@pytest.mark.parametrize(
    "body, said",
    [
        (b"[", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"node": "", "hostname": "h", "version": "1"}', "short strings"),
        (b'{"node": "n", "hostname": "h", "version": "1", "sessions": 3}', "must be a list"),
        (b'{"node": "n", "hostname": "h", "version": "1", "sessions": [{"session": "../x"}]}',
         "session id"),
        (b'{"node": "n", "hostname": "h", "version": "1", "sessions": '
         b'[{"session": "0123456789abcdef", "cpu_seconds": -1}]}', "cpu_seconds"),
        (b'{"node": "n", "hostname": "h", "version": "1", "sessions": '
         b'[{"session": "0123456789abcdef", "oom_kills": 1.5}]}', "oom_kills"),
        (b'{"node": "n", "hostname": "h", "version": "1", "sessions": [], "disk_free": true}',
         "disk_free"),
        (b'{"node": "n", "hostname": "h", "version": "1", "sessions": [], '
         b'"no_new_privileges": "yes"}', "no_new_privileges"),
    ],
)  # fmt: skip
def test_a_malformed_report_says_what_is_wrong(body, said):
    with pytest.raises(ReportError, match=said):
        parse_report(body)


def test_no_new_privileges_is_read_from_the_kernels_status():
    assert no_new_privileges_of("Name:\tjupyter\nNoNewPrivs:\t1\nSeccomp:\t2\n") is True
    assert no_new_privileges_of("NoNewPrivs:\t0\n") is False
    assert no_new_privileges_of("Name:\told kernel\n") is None


def test_cpu_is_found_under_a_daemons_cgroup_parent(tmp_path):
    v1 = tmp_path / "cpuacct" / "mbsw-w1" / "abc"
    v1.mkdir(parents=True)
    (v1 / "cpuacct.usage").write_text("2500000000\n")
    assert cpu_of_cgroup("abc", tmp_path) == 2.5
    v2 = tmp_path / "parent" / "def"
    v2.mkdir(parents=True)
    (v2 / "cpu.stat").write_text("usage_usec 1500000\nuser_usec 1\n")
    assert cpu_of_cgroup("def", tmp_path) == 1.5
    assert cpu_of_cgroup("missing", tmp_path) is None


def test_only_unused_images_of_the_registry_are_collected_oldest_first():
    images = [
        {"Id": "new", "Created": 3, "RepoDigests": ["reg:5000/a@sha256:1"]},
        {"Id": "old", "Created": 1, "RepoTags": ["reg:5000/b:1"]},
        {"Id": "used", "Created": 0, "RepoTags": ["reg:5000/c:1"]},
        {"Id": "other", "Created": 0, "RepoTags": ["elsewhere/d:1"]},
    ]
    assert [i["Id"] for i in collectable(images, {"used"}, "reg:5000")] == ["old", "new"]
    assert collectable(images, set(), "") == []


def test_session_ports_open_to_the_manager_only():
    text = inbound_text("MB-agent-IN", ["10.0.0.1"])
    rules = [line for line in text.splitlines() if line.startswith("-A")]
    assert rules == [
        "-A MB-agent-IN -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
        "-A MB-agent-IN -s 10.0.0.1/32 -j RETURN",
        "-A MB-agent-IN -p tcp -j REJECT --reject-with tcp-reset",
        "-A MB-agent-IN -j REJECT",
    ]


NODES = [
    {"ID": i, "Description": {"Hostname": name}, "Status": {"State": "ready", "Addr": addr}}
    for i, name, addr in (("a", "mgr", "10.0.0.10"), ("b", "w1", "10.0.0.11"))
]


def record(**changes) -> NodeRecord:
    fields = dict(
        at=1000.0,
        hostname="h",
        version="1.0",
        no_new_privileges=True,
        disk_free=1,
        rules="",
        pulled="reg/p@sha256:1",
        pull_error="",
    )
    return NodeRecord(**{**fields, **changes})


def by_name(findings):
    return {f.name: f for f in findings}


def test_doctor_finds_every_agent_well():
    found = by_name(
        agent_findings(NODES, {"a": record(), "b": record()}, "reg/p@sha256:1", 1010, version="1.0")
    )
    assert all(f.ok for f in found.values()), found
    assert set(found) == {
        "agents",
        "agent version",
        "no-new-privileges",
        "node disk",
        "node rules",
        "nodes can pull",
    }


def test_doctor_reports_a_node_without_no_new_privileges_and_the_rest():
    records = {
        "a": record(no_new_privileges=False, version="0.9", rules="iptables: denied"),
        "b": record(at=1000 - STALE_SECONDS - 1),
    }
    found = by_name(agent_findings(NODES, records, "reg/p@sha256:1", 1000, version="1.0", floor=2))
    assert not found["node disk"].ok and "mgr 10.0.0.10: 0.0 GiB free" in found["node disk"].found
    assert not found["agents"].ok and "silent: w1 10.0.0.11" in found["agents"].found
    assert (
        not found["agent version"].ok and "mgr 10.0.0.10 runs 0.9" in found["agent version"].found
    )
    assert not found["no-new-privileges"].ok
    assert "without it on: mgr 10.0.0.10" in found["no-new-privileges"].found
    assert not found["node rules"].ok and "iptables: denied" in found["node rules"].found


def test_doctor_says_which_node_could_not_pull():
    records = {
        "a": record(pulled="", pull_error="reg/p@sha256:2: unauthorized"),
        "b": record(pulled="reg/p@sha256:1"),
    }
    found = by_name(agent_findings(NODES, records, "reg/p@sha256:2", 1000, version="1.0"))
    pull = found["nodes can pull"]
    assert not pull.ok and not pull.warning
    assert "mgr 10.0.0.10: reg/p@sha256:2: unauthorized" in pull.found
    assert "w1" not in pull.found.split("pull failed on", 1)[1].split(";")[0]


def test_doctor_without_any_report_says_to_run_the_agent():
    found = agent_findings(NODES, {"a": None, "b": None}, "", 1000)
    assert [f.name for f in found] == ["agents"] and "minibinder agent" in found[0].fix
