"""Which container engine minibinder talks to, and what that decides (pure).

minibinder runs beside rootful Docker on Linux, rootless Docker, Podman, Docker Desktop (a VM on
a laptop) or a daemon on another machine. What differs is a fact of the engine, read once at
start-up from `docker info` and DOCKER_HOST (`EngineFacts`); everything else here is a pure
decision on those facts: where a session is reached (`decide_reach`), and which host features
minibinder may rely on (`capabilities`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from .errors import ConfigError

Reach = Literal["network", "published", "node"]
REACH_LABEL = "minibinder.reach"  # on a session's container: how it is reached


@dataclass(frozen=True)
class EngineFacts:
    name: str  # "docker" or "podman"
    version: str
    rootless: bool  # the daemon runs as an unprivileged user (rootlesskit, or rootless Podman)
    desktop: bool  # Docker Desktop: the daemon and its containers are in a VM
    remote: bool  # DOCKER_HOST names another machine
    cgroup_version: str  # "1", "2" or "" (not said)
    cgroups: bool  # the engine can set cgroup limits at all

    @property
    def label(self) -> str:
        kind = ("rootless " if self.rootless else "") + (
            "Docker Desktop" if self.desktop else ("Podman" if self.name == "podman" else "Docker")
        )
        return f"{kind} {self.version}" + (" on another machine" if self.remote else "")


def facts_of(info: Mapping[str, Any], version: Mapping[str, Any], docker_host: str) -> EngineFacts:
    """The facts, from `docker info`, `docker version` and the DOCKER_HOST minibinder uses."""
    components = [str(c.get("Name", "")) for c in version.get("Components") or []]
    podman = (
        any("podman" in name.lower() for name in components)
        or "podman" in str(version.get("Platform", {}).get("Name", "")).lower()
    )
    security = " ".join(str(option) for option in info.get("SecurityOptions") or [])
    operating_system = str(info.get("OperatingSystem", ""))
    rootless = (
        "rootless" in security
        or info.get("Rootless") is True  # Podman's compat info: no name=rootless there (measured)
        or bool((info.get("host") or {}).get("security", {}).get("rootless"))  # Podman's own
    )
    desktop = "docker desktop" in operating_system.lower()
    cgroup_driver = str(info.get("CgroupDriver", ""))
    cgroups = cgroup_driver not in ("none", "") or not rootless
    return EngineFacts(
        name="podman" if podman else "docker",
        version=str(version.get("Version") or info.get("ServerVersion") or ""),
        rootless=rootless,
        desktop=desktop,
        remote=is_remote(docker_host),
        cgroup_version=str(info.get("CgroupVersion") or ""),
        cgroups=cgroups,
    )


def is_remote(docker_host: str) -> bool:
    """Whether DOCKER_HOST names another machine (a unix socket, or loopback, is this one)."""
    if not docker_host or docker_host.startswith(("unix://", "npipe://")):
        return False
    host = urlsplit(docker_host).hostname or ""
    return host not in ("localhost", "127.0.0.1", "::1")


def shares_netfilter(facts: EngineFacts) -> bool:
    """Whether the engine's containers pass this host's firewall (a rootful engine here)."""
    return not (facts.rootless or facts.desktop or facts.remote)


def check_limits_policy(facts: EngineFacts, bind: str, allow_unlimited: bool) -> str:
    """Refuse (ConfigError) an engine that enforces no limits behind a public address; return a
    warning for the start-up line when it is allowed, else ""."""
    if facts.cgroups:
        return ""
    host = bind.rpartition(":")[0].strip("[]")
    loopback = host in ("localhost", "::1") or host.startswith("127.")
    if not loopback and not allow_unlimited:
        raise ConfigError(
            f"{facts.label} enforces no memory, CPU or process limits (it runs without cgroups), "
            f"and bind = {bind} is reachable by others: one session could take the machine. "
            "Give the engine cgroups (cgroup v2 with systemd delegation), bind to 127.0.0.1, or "
            "set allow_unlimited_sessions = true to accept it."
        )
    return f"WARNING: {facts.label} enforces no session limits (no cgroups)"


def decide_reach(facts: EngineFacts, setting: str, placement: str = "local") -> Reach:
    """Where sessions are reached: at their address on minibinder's Docker network, which only a
    rootful engine on this machine routes to the host, else at a port the engine publishes on
    its host's loopback (rootless engines, Docker Desktop's VM); in a swarm (`placement`), at
    the port each session's node publishes for it. `setting` is session_reach: "auto", or the
    operator's own "network" / "published" (which a swarm cannot honour: its sessions run on
    other machines)."""
    if placement == "swarm":
        return "node"
    if setting in ("network", "published"):
        return setting  # type: ignore[return-value]
    if facts.rootless or facts.desktop or facts.remote:
        return "published"
    return "network"


# What Podman puts before the names of the images it loaded or built (Docker lists them as given).
PODMAN_NAME_PREFIXES = ("localhost/", "docker.io/library/")


def short_image_name(name: str) -> str:
    """An image's name as minibinder gave it, from the name an engine lists it under: Podman
    lists a loaded `base:tag` as `localhost/base:tag` and a built one under docker.io/library/."""
    for prefix in PODMAN_NAME_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


# Read inside a session: its memory limit as the kernel holds it (cgroup v2, else v1).
MEMORY_LIMIT_COMMAND = [
    "sh",
    "-c",
    "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
]


def limits_hold(memory_limit: str, configured: int) -> bool:
    """Whether the memory limit a session's kernel reports is the one minibinder asked for
    (rootless engines without cgroups accept the setting and enforce nothing: "max", or the
    whole machine)."""
    text = memory_limit.strip()
    return text.isdigit() and int(text) <= configured * 1.05


def limits_fact(facts: EngineFacts) -> str:
    """The name under which what this engine enforces is remembered."""
    return f"limits enforced by {facts.label}"


@dataclass(frozen=True)
class Capability:
    name: str
    available: bool
    found: str
    fix: str = ""  # what to do without it


REACH_TEXT = {
    "network": "their address on the session network",
    "published": "a port published on the engine host's loopback",
    "node": "a port published on the swarm node each runs on",
}


def capabilities(
    facts: EngineFacts, reach: Reach, cgroup_files: bool, root: bool, limits_enforced: bool | None
) -> list[Capability]:
    """What minibinder can rely on here, each with what was found and what to do without it.
    `cgroup_files`: a container's cgroup files are readable from this process; `root`: this
    process may install firewall rules; `limits_enforced`: read back from a session (None: no
    session has started yet)."""
    netfilter = shares_netfilter(facts)
    if limits_enforced is None:
        limits = Capability(
            "limits enforced",
            facts.cgroups,
            "to be read back from the first session" if facts.cgroups else _UNLIMITED,
            "" if facts.cgroups else _UNLIMITED_FIX,
        )
    else:
        found = "memory, CPU and process limits hold" if limits_enforced else _UNLIMITED
        limits = Capability("limits enforced", limits_enforced, found, _UNLIMITED_FIX)
    if netfilter and root:
        egress = Capability("egress filter", True, "rules installed for minibinder's bridges")
    elif netfilter:
        egress = Capability(
            "egress filter",
            False,
            "not installed: minibinder is not root",
            "run minibinder as root, or firewall the bridges yourself",
        )
    else:
        egress = Capability(
            "egress filter",
            False,
            f"not possible: {facts.label} keeps its containers off this host's netfilter, so "
            "sessions and builds reach whatever the engine's host reaches",
            "firewall the engine's host (or VM) yourself; SECURITY.md says what to block",
        )
    return [
        Capability("sessions reached by", True, f"{REACH_TEXT[reach]} ({facts.label})"),
        Capability(
            "cgroup files",
            cgroup_files,
            "read directly each culler round"
            if cgroup_files
            else "not visible here: the engine's stats API is asked instead",
        ),
        limits,
        egress,
    ]


_UNLIMITED = "NOT enforced by this engine (no cgroups): one session can take the whole machine"
_UNLIMITED_FIX = (
    "give the engine cgroups (cgroup v2 with systemd delegation for rootless engines); on a "
    "public bind minibinder refuses to start without them unless allow_unlimited_sessions = true"
)
