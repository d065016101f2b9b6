"""What `minibinder agent` tells the manager, and how the manager checks and takes it (pure).

A report is JSON: the node, the agent's version, whether sessions there run with
no-new-privileges, per session its CPU-seconds so far and the out-of-memory kills since the
last report the manager took, the node's free disk, whether its rules are in place, and how
its last pull of the manager's probe image went. It travels over HTTP signed with the
per-cluster key: HMAC-SHA256 of "<unix time>.<body>", sent with the time; the manager refuses
a report whose signature does not match, whose time is more than MAX_SKEW seconds away from
its own, or which is not newer than the node's last report (a replay).

The manager answers with what the agent should do next (`Answer`): the image to pull as the
doctor's probe, the registry whose unused images it may remove, and the disk watermarks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from dataclasses import dataclass

MAX_SKEW = 60.0
TIME_HEADER = "X-Minibinder-Agent-Time"
SIGNATURE_HEADER = "X-Minibinder-Agent-Signature"
KEY_BYTES = 32
_SESSION_ID = re.compile(r"[0-9a-f]{16}")


class ReportError(ValueError):
    """A report the manager refuses; the message says why (never the key)."""


@dataclass(frozen=True)
class SessionUsage:
    session: str
    cpu_seconds: float | None  # None: the node could not say
    oom_kills: int  # counted by the agent since the last report the manager took


@dataclass(frozen=True)
class Report:
    node: str  # the node's swarm id
    hostname: str
    version: str
    no_new_privileges: bool | None  # read inside a session; None: no session seen yet
    sessions: tuple[SessionUsage, ...]
    disk_free: int | None = None  # bytes free where the node's engine keeps images
    rules: str = ""  # "": the node's rules are in place; else why not
    pulled: str = ""  # the probe image the agent last pulled ("": none asked, or it failed)
    pull_error: str = ""  # why the last pull failed


@dataclass(frozen=True)
class Answer:
    """What the manager tells an agent in reply to a report."""

    pull: str = ""  # an image to pull (by digest), once, to show the node can
    registry: str = ""  # only images of this registry are collected
    gc_high: int = 85  # disk use (percent) at which the agent removes unused images
    gc_low: int = 75  # disk use (percent) it brings the disk down to


def sign(key: bytes, sent_at: str, body: bytes) -> str:
    return hmac.new(key, sent_at.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(key: bytes, sent_at: str, body: bytes, signature: str, now: float) -> None:
    """Raise ReportError unless the report was signed with `key` within MAX_SKEW of now."""
    try:
        when = float(sent_at)
    except ValueError:
        raise ReportError("the report's time is not a number") from None
    if not math.isfinite(when):
        raise ReportError("the report's time is not a number")
    if abs(now - when) > MAX_SKEW:
        raise ReportError(
            f"the report is {abs(now - when):.0f} s away from the manager's clock "
            f"(at most {MAX_SKEW:.0f} s): a replay, or a node's clock is off"
        )
    # As bytes: compare_digest refuses str with characters past ASCII (a 500, not a 403).
    given = signature.strip().lower().encode("utf-8", "replace")
    if not hmac.compare_digest(sign(key, sent_at, body).encode(), given):
        raise ReportError("the report's signature does not match the cluster key")


def parse_report(body: bytes) -> Report:
    """The report in `body`, checked field by field."""
    try:
        data = json.loads(body)
    except ValueError:
        raise ReportError("the report is not JSON") from None
    if not isinstance(data, dict):
        raise ReportError("the report is not a JSON object")
    names = [data.get(k) for k in ("node", "hostname", "version")]
    if not all(isinstance(v, str) and 0 < len(v) <= 200 for v in names):
        raise ReportError("node, hostname and version must be short strings")
    node, hostname, version = (str(v) for v in names)
    privileges = data.get("no_new_privileges")
    if privileges is not None and not isinstance(privileges, bool):
        raise ReportError("no_new_privileges must be true, false or null")
    entries = data.get("sessions")
    if not isinstance(entries, list) or len(entries) > 10_000:
        raise ReportError("sessions must be a list")
    sessions = []
    for entry in entries:
        if not isinstance(entry, dict) or not _SESSION_ID.fullmatch(str(entry.get("session"))):
            raise ReportError("each session needs a session id")
        cpu, oom = entry.get("cpu_seconds"), entry.get("oom_kills", 0)
        if cpu is not None and (not isinstance(cpu, int | float) or cpu < 0):
            raise ReportError("cpu_seconds must be a number of seconds or null")
        if not isinstance(oom, int) or oom < 0:
            raise ReportError("oom_kills must be a count")
        sessions.append(SessionUsage(entry["session"], None if cpu is None else float(cpu), oom))
    disk = data.get("disk_free")
    if disk is not None and (not isinstance(disk, int) or isinstance(disk, bool) or disk < 0):
        raise ReportError("disk_free must be a number of bytes or null")
    free: int | None = disk
    texts = {k: data.get(k, "") for k in ("rules", "pulled", "pull_error")}
    if not all(isinstance(v, str) and len(v) <= 1000 for v in texts.values()):
        raise ReportError("rules, pulled and pull_error must be short strings")
    return Report(
        node,
        hostname,
        version,
        privileges,
        tuple(sessions),
        free,
        texts["rules"],
        texts["pulled"],
        texts["pull_error"],
    )


def report_body(report: Report) -> bytes:
    return json.dumps(
        {
            "node": report.node,
            "hostname": report.hostname,
            "version": report.version,
            "no_new_privileges": report.no_new_privileges,
            "sessions": [
                {"session": s.session, "cpu_seconds": s.cpu_seconds, "oom_kills": s.oom_kills}
                for s in report.sessions
            ],
            "disk_free": report.disk_free,
            "rules": report.rules,
            "pulled": report.pulled,
            "pull_error": report.pull_error,
        },
        separators=(",", ":"),
    ).encode()


def answer_body(answer: Answer) -> bytes:
    return json.dumps(
        {
            "pull": answer.pull,
            "registry": answer.registry,
            "gc_high": answer.gc_high,
            "gc_low": answer.gc_low,
        }
    ).encode()


def sign_answer(key: bytes, report_signature: str, body: bytes) -> str:
    """The manager's signature of its answer, bound to the report it answers: an answer is
    taken only from whoever holds the key, and only for that report (no answer replayed)."""
    return sign(key, "answer:" + report_signature, body)


def verify_answer(key: bytes, report_signature: str, body: bytes, signature: str) -> None:
    expected = sign_answer(key, report_signature, body).encode()
    if not hmac.compare_digest(expected, signature.strip().lower().encode("utf-8", "replace")):
        raise ReportError("the manager's answer is not signed with the cluster key")


def parse_answer(body: bytes) -> Answer:
    try:
        data = json.loads(body)
        pull, registry = data["pull"], data["registry"]
        high, low = data["gc_high"], data["gc_low"]
    except (ValueError, KeyError, TypeError):
        raise ReportError("the manager's answer is not what an agent expects") from None
    if not (
        isinstance(pull, str)
        and isinstance(registry, str)
        and isinstance(high, int)
        and isinstance(low, int)
    ):
        raise ReportError("the manager's answer is not what an agent expects")
    return Answer(pull, registry, high, low)


def agent_fact(node: str) -> str:
    """The name under which the manager keeps a node's last report (without the sessions)."""
    return f"agent on node {node}"


@dataclass(frozen=True)
class NodeRecord:
    """A node's last report as the manager keeps it (the sessions went to the sessions)."""

    at: float  # the report's own time
    hostname: str
    version: str
    no_new_privileges: bool | None
    disk_free: int | None
    rules: str
    pulled: str
    pull_error: str


def node_record(report: Report, at: float) -> str:
    return json.dumps(
        {
            "at": at,
            "hostname": report.hostname,
            "version": report.version,
            "no_new_privileges": report.no_new_privileges,
            "disk_free": report.disk_free,
            "rules": report.rules,
            "pulled": report.pulled,
            "pull_error": report.pull_error,
        }
    )


def read_node_record(text: str | None) -> NodeRecord | None:
    if not text:
        return None
    try:
        return NodeRecord(**json.loads(text))
    except (ValueError, TypeError):
        return None


def check_newer(previous: NodeRecord | None, sent_at: str) -> None:
    """A report must be newer than the node's last one: the same report sent twice (a
    replay within MAX_SKEW) would count its out-of-memory kills twice."""
    if previous is not None and float(sent_at) <= previous.at:
        raise ReportError("the report is not newer than the node's last one (a replay)")
