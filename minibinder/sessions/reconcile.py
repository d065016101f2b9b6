"""Restart safety: make SQLite and Docker agree. Docker labels plus SQLite are the truth.

`plan_reconcile` is pure (records and containers in, actions out); `reconcile` asks Docker and
Jupyter, then acts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ..engines import REACH_LABEL
from ..store import SessionRecord
from . import jupyter
from .launcher import JUPYTER_PORT, SESSION_LABEL, Sessions

log = logging.getLogger(__name__)


@dataclass
class ReconcilePlan:
    remove_containers: list[str] = field(default_factory=list)  # containers nobody can reach
    stop: list[tuple[str, str]] = field(default_factory=list)  # (session id, reason)
    new_targets: dict[str, str] = field(default_factory=dict)  # session id → host:port
    # Sessions whose launcher died half way: id → (container, target), adopted if Jupyter answers.
    maybe_adopt: dict[str, tuple[str, str]] = field(default_factory=dict)
    drop_records: list[str] = field(default_factory=list)  # records whose container is gone


def plan_reconcile(
    records: list[SessionRecord],
    containers: list[dict[str, Any]],
    network: str,
    now: float,
    grace: float,
) -> ReconcilePlan:
    """Decide what to do with every container of this installation and every session record.

    Running containers of known sessions are kept, their routes refreshed when the address
    changed (it does when Docker restarts); containers of unknown sessions (no token on record)
    and stopped ones go; a session whose launcher died half way is adopted if Jupyter answers
    (the caller asks); records without a container are dropped. A record still within `grace`
    seconds of its launch belongs to its launcher and is left alone.
    """
    plan = ReconcilePlan()
    by_id = {record.id: record for record in records}

    def launching_now(record: SessionRecord) -> bool:
        return record.state == "launching" and now - record.created < grace

    seen = set()
    for container in containers:
        session_id = container["Labels"].get(SESSION_LABEL, "")
        record = by_id.get(session_id)
        seen.add(session_id)
        if record is None:
            plan.remove_containers.append(container["Id"])
            continue
        if launching_now(record):
            continue
        if container["State"] == "lost":  # its swarm node left or died
            plan.stop.append((session_id, "node lost"))
            continue
        moved = record.node and container.get("Node") and container["Node"] != record.node
        if moved and record.state != "launching":
            # The swarm restarted it elsewhere: a new server, its files left behind.
            plan.stop.append((session_id, "moved to another node"))
            continue
        if container["State"] == "starting" and record.state != "launching":
            continue  # the engine brings it back (a restart after a crash): asked next round
        if container["State"] != "running":
            plan.stop.append((session_id, container.get("EndReason") or "container exited"))
            continue
        target = endpoint_of(container, network)
        if record.state == "launching":
            if target:
                plan.maybe_adopt[session_id] = (container["Id"], target)
            else:
                plan.stop.append((session_id, "launch abandoned"))
        elif target and target != record.target:
            plan.new_targets[session_id] = target
    plan.drop_records = [
        session_id
        for session_id, record in by_id.items()
        if session_id not in seen and not launching_now(record)
    ]
    return plan


def endpoint_of(container: dict[str, Any], network: str) -> str:
    """Where the proxy reaches a session's container now (it changes when the engine restarts),
    by the reach it was started with: its port published on loopback, or its address on the
    session network, or (a swarm) the port its node publishes; "" when it has none."""
    reach = container.get("Labels", {}).get(REACH_LABEL)
    if reach == "node":
        return container.get("Endpoint", "")
    if reach == "published":
        for port in container.get("Ports") or []:
            if port.get("PrivatePort") == JUPYTER_PORT and port.get("PublicPort"):
                return f"127.0.0.1:{port['PublicPort']}"
        return ""
    networks = container.get("NetworkSettings", {}).get("Networks", {})
    address = (networks.get(network) or {}).get("IPAddress")
    return f"{address}:{JUPYTER_PORT}" if address else ""


def reconcile(sessions: Sessions, now: float) -> ReconcilePlan:
    config, store = sessions.config, sessions.store
    found = sessions.placement.found(sessions.own_label)
    nodes = {c["Labels"].get(SESSION_LABEL, ""): c["Node"] for c in found if c.get("Node")}
    plan = plan_reconcile(
        store.sessions(), found, config.session_network, now, grace=config.launch_timeout + 30
    )
    for container_id in plan.remove_containers:
        sessions.placement.remove(container_id)
    if sessions.local:
        # A session's volumes go with its container; these are what a removal outside
        # minibinder (`docker rm` without -v) left behind.
        left = sessions.docker.remove_unused_volumes([sessions.own_label, SESSION_LABEL])
        if left:
            log.info(
                "removed %d session volume(s) a container removed outside minibinder left", left
            )
    for session_id, reason in plan.stop:
        sessions.stop(session_id, reason)
    for session_id, (container_id, target) in plan.maybe_adopt.items():
        record = store.get_session(session_id)
        if record and jupyter.answers(target, record.prefix):
            store.update_session(
                session_id,
                state="running",
                target=target,
                container_id=container_id,
                node=nodes.get(session_id, record.node),
            )
        else:
            sessions.stop(session_id, "launch abandoned")
    for session_id, target in plan.new_targets.items():
        store.update_session(session_id, target=target)
        sessions.forget_route(session_id)
    for session_id in plan.drop_records:
        store.delete_session(session_id)
        sessions.forget_route(session_id)
    return plan
