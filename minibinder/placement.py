"""Where a session's container runs: the small interface the launcher uses, and the local kind.

`placement = "local"` runs each session as a container of this machine's engine
(`LocalPlacement`, the path minibinder always had); `"swarm"` as a one-replica service of a
Docker Swarm (`swarm.placement.SwarmPlacement`). The launcher, the reconciler and the culler ask
only what is here: start, where it is reached, whether it still runs, its last output, remove,
and what runs now (`found`, in the shape the reconciler reads).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from .docker_client import Docker
from .errors import LaunchError

State = Literal["running", "starting", "ended"]


@dataclass(frozen=True)
class SessionContainer:
    """What one session runs, with its limits; the same whatever the placement."""

    image: str
    name: str
    command: list[str]
    environment: dict[str, str]
    labels: dict[str, str]
    user: str
    mem_limit: int
    mem_reservation: int
    nano_cpus: int
    pids_limit: int
    port: int  # the port its server listens on
    reach: str  # how it is reached (engines.Reach)
    disk_limit: int = 0  # local only: its writable layer's cap, where the driver can
    # local only: called with the created container's id before it starts (kept work goes in)
    before_start: Callable[[str], None] | None = None
    ulimits: dict[str, int] | None = None  # local only: session_ulimits (Podman needs them)


@dataclass(frozen=True)
class Endpoint:
    target: str  # host:port the proxy relays to ("": not known yet)
    node: str = ""  # the node it runs on, as the operator reads it ("": this machine)


class Placement(Protocol):
    def start(self, container: SessionContainer) -> str:
        """Start it; return its handle (a container or service id)."""

    def endpoint(self, handle: str, reach: str, port: int) -> Endpoint:
        """Where it is reached now (target "" while the engine has not placed it yet)."""

    def state(self, handle: str) -> State:
        """Whether it runs, is still on its way, or has ended (or is gone)."""

    def logs(self, handle: str) -> str:
        """Its last output, and why the engine could not run it if it said."""

    def remove(self, handle: str) -> None:
        """Stop and remove it; gone already is fine."""

    def found(self, label: str) -> list[dict[str, Any]]:
        """Every session of `label` the engine runs, each as the reconciler reads it: Id,
        State ("running", "starting", "exited", "lost"), Labels, and where it is reached
        (NetworkSettings/Ports, or Endpoint and Node); EndReason when it ended."""

    def seats(self, reservation: int, headroom: int) -> int | None:
        """Sessions of `reservation` bytes the placement has room for in all (None: this
        machine's memory decides, as admission always did)."""


class LocalPlacement:
    """Sessions as containers of this machine's engine."""

    def __init__(self, docker: Docker, network: str):
        self.docker, self.network = docker, network  # network: session_network

    def start(self, container: SessionContainer) -> str:
        return self.docker.start_container(
            image=container.image,
            name=container.name,
            command=container.command,
            environment=container.environment,
            labels=container.labels,
            network=self.network,
            user=container.user,
            mem_limit=container.mem_limit,
            mem_reservation=container.mem_reservation,
            nano_cpus=container.nano_cpus,
            pids_limit=container.pids_limit,
            disk_limit=container.disk_limit,
            publish=container.port if container.reach == "published" else 0,
            before_start=container.before_start,
            ulimits=container.ulimits,
        )

    def endpoint(self, handle: str, reach: str, port: int) -> Endpoint:
        if reach == "published":
            published = self.docker.published_port(handle, port)
            if published is None:
                raise LaunchError("the engine published no port for the session")
            return Endpoint(f"127.0.0.1:{published}")
        return Endpoint(f"{self.docker.container_address(handle, self.network)}:{port}")

    def state(self, handle: str) -> State:
        state = self.docker.container_state(handle)
        return "running" if state and state.get("Running") else "ended"

    def logs(self, handle: str) -> str:
        return self.docker.container_logs(handle)

    def remove(self, handle: str) -> None:
        self.docker.remove_container(handle)

    def found(self, label: str) -> list[dict[str, Any]]:
        found = self.docker.containers(label)
        for container in found:
            # Between a crash and the engine's restart (on-failure) Docker says "restarting":
            # the session is on its way back, not ended.
            if container.get("State") == "restarting":
                container["State"] = "starting"
        return found

    def seats(self, reservation: int, headroom: int) -> int | None:
        return None
