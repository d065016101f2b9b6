"""Pure decisions of the swarm placement: a session's service spec, what its tasks say about it,
the room the cluster's nodes have, the registry's names and credentials.

Everything here takes the engine's answers (plain dicts, as the API gives them) and returns
plain values; `placement.SwarmPlacement` asks and acts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..placement import SessionContainer

# Task states on their way to running; the rest are running or ended.
STARTING_STATES = frozenset(
    ("new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting")
)
# A crashed server comes back (restart on failure), as a local container does.
RESTARTING_STATES = frozenset(("failed",))


def service_spec(container: SessionContainer, image_ref: str) -> dict[str, Any]:
    """The service that runs one session: one replica of `image_ref` (pulled by digest) with
    the session's limits as Swarm resources, its port published on the node it runs on.

    Docker 20.10 has no per-service security options: no-new-privileges comes from each
    node's daemon configuration (the README says so; `doctor` reports a node without it).
    Memory and swap cannot be set equal on a service: a node without swap accounting (or
    without swap) is what keeps the memory limit the whole limit.
    """
    return {
        "Name": container.name,
        "Labels": container.labels,
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": image_ref,
                # Args, not Command: Command would replace the image's entrypoint.
                "Args": container.command,
                "Env": [f"{key}={value}" for key, value in container.environment.items()],
                "Labels": container.labels,
                "User": container.user,
                "Init": True,
                "CapabilityDrop": ["ALL"],
                "StopSignal": "SIGKILL",
            },
            "Resources": {
                "Limits": {
                    "MemoryBytes": container.mem_limit,
                    "NanoCPUs": container.nano_cpus,
                    "Pids": container.pids_limit,
                },
                "Reservations": {"MemoryBytes": container.mem_reservation},
            },
            # Back after a crash; a server that exits by itself with 0 (File → Shut Down)
            # stays down, and its session ends (as restart_policy on-failure does locally).
            "RestartPolicy": {"Condition": "on-failure", "Delay": 1_000_000_000},
        },
        "Mode": {"Replicated": {"Replicas": 1}},
        "EndpointSpec": {
            "Mode": "vip",
            "Ports": [{"Protocol": "tcp", "TargetPort": container.port, "PublishMode": "host"}],
        },
    }


@dataclass(frozen=True)
class TaskView:
    """What a session's service is doing now, read from its tasks and the nodes."""

    state: str  # "running", "starting", "ended" or "lost"
    target: str = ""  # node address:published port, when running
    node: str = ""  # the node's name as the operator reads it
    message: str = ""  # why it ended or waits, as the engine said
    task_state: str = ""  # the newest task's state as the engine names it


def node_name(node: dict[str, Any]) -> str:
    """A node as the operator reads it, stable while the node is: its host name and address."""
    hostname = (node.get("Description") or {}).get("Hostname", "") or node.get("ID", "")[:12]
    address = (node.get("Status") or {}).get("Addr", "")
    return f"{hostname} {address}".strip()


def node_ready(node: dict[str, Any] | None) -> bool:
    return bool(node) and (node.get("Status") or {}).get("State") == "ready"  # type: ignore[union-attr]


def view_of(tasks: list[dict[str, Any]], nodes: dict[str, dict[str, Any]], port: int) -> TaskView:
    """The session's state from its service's tasks (newest first wins) and the nodes by id.

    A task that ran on a node which is down, disconnected or gone is "lost": a session does not
    move between nodes (its files were on the one it ran on)."""
    if not tasks:
        return TaskView("starting")
    ordered = sorted(tasks, key=lambda t: (t.get("Version") or {}).get("Index", 0), reverse=True)
    for task in ordered:
        node_id = task.get("NodeID", "")
        had_container = bool(
            ((task.get("Status") or {}).get("ContainerStatus") or {}).get("ContainerID")
        )
        if node_id and had_container and not node_ready(nodes.get(node_id)):
            return TaskView(
                "lost",
                node=node_name(nodes.get(node_id) or {"ID": node_id}),
                message="its node left the swarm or stopped answering",
            )
    current = ordered[0]
    status = current.get("Status") or {}
    state = status.get("State", "")
    message = status.get("Err") or status.get("Message") or ""
    node = nodes.get(current.get("NodeID", "")) or {}
    if state == "running":
        published = [
            p.get("PublishedPort")
            for p in (status.get("PortStatus") or {}).get("Ports") or []
            if p.get("TargetPort") == port and p.get("PublishedPort")
        ]
        address = (node.get("Status") or {}).get("Addr", "")
        target = f"{address}:{published[0]}" if published and address else ""
        return TaskView("running", target, node_name(node), message)
    if state in STARTING_STATES or state in RESTARTING_STATES:
        return TaskView("starting", node=node_name(node) if node else "", message=message)
    return TaskView(
        "ended", node=node_name(node) if node else "", message=message, task_state=state
    )


def found_entry(service: dict[str, Any], view: TaskView) -> dict[str, Any]:
    """One session's service in the shape the reconciler reads (sessions.reconcile)."""
    labels = (service.get("Spec") or {}).get("Labels") or {}
    state = {"running": "running", "starting": "starting", "lost": "lost"}.get(view.state, "exited")
    entry = {
        "Id": service["ID"],
        "State": state,
        "Labels": labels,
        "Endpoint": view.target,
        "Node": view.node,
    }
    if view.state == "ended":
        # Exited with 0 by itself (File → Shut Down), or refused by the engine.
        entry["EndReason"] = "shut down" if view.task_state == "complete" else "container exited"
    return entry


def seats(nodes: list[dict[str, Any]], reservation: int, headroom: int) -> int:
    """Sessions the ready, active nodes have room for in all: each node's memory minus the
    headroom, in reservations (the scheduler places by reservation, node by node)."""
    total = 0
    for node in nodes:
        if not node_ready(node) or (node.get("Spec") or {}).get("Availability") != "active":
            continue
        memory = ((node.get("Description") or {}).get("Resources") or {}).get("MemoryBytes", 0)
        total += max(0, (memory - headroom) // reservation)
    return total


def pushed_name(registry: str, image: str) -> tuple[str, str]:
    """(repository, tag) of a local image's name in `registry`."""
    name, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
    return f"{registry}/{name}", tag or "latest"


def read_credentials(text: str, path: str) -> tuple[str, str]:
    """`user:password` from the first line of registry_credentials_file. The error names the
    file and never repeats its content."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    user, colon, password = line.partition(":")
    if not colon or not user or not password:
        raise ConfigError(
            f"registry_credentials_file {path}: expected one line `user:password` "
            "(the content is not shown here)"
        )
    return user, password
