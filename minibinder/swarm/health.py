"""What `minibinder doctor` checks in swarm placement: this engine is a manager, the registry
takes a push, every node is ready, and what only the nodes themselves can tell, from their
agents' reports: every node can pull (the probe image just pushed), every agent runs the
manager's version, sessions there run with no-new-privileges, the node's rules are in place.

`manager_finding`, `node_findings` and `agent_findings` are pure (the engine's answers and the
reports in, findings out); `swarm_findings` asks the manager's engine, pushes one tiny probe
image and waits a little for every agent to pull it.
"""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import __version__
from ..config import Config
from ..docker_client import BuildRequest, Docker
from ..docker_services import SwarmApi
from ..errors import BuildError, ConfigError, DockerUnavailable, LaunchError
from ..store import Store
from .intake import PROBE_FACT, node_records
from .placement import log_in
from .plan import node_name, node_ready, pushed_name
from .reports import NodeRecord

PROBE_IMAGE = "minibinder-doctor-probe:latest"
STALE_SECONDS = 120.0  # an agent silent longer than this is not running
PULL_WAIT_SECONDS = 45.0  # how long the doctor waits for every agent to pull its probe
AGENT_FIX = (
    "run `minibinder agent` on every node (a global service; README, 'Outgrowing one machine')"
)


@dataclass(frozen=True)
class Finding:
    name: str
    ok: bool
    found: str
    fix: str = ""
    warning: bool = False


def manager_finding(swarm: dict[str, Any]) -> Finding:
    state = swarm.get("LocalNodeState", "")
    if state == "active" and swarm.get("ControlAvailable"):
        nodes = swarm.get("Nodes", 0)
        return Finding("swarm manager", True, f"this engine manages a swarm of {nodes} node(s)")
    found = "this engine is not in a swarm" if state != "active" else "this engine is a worker"
    return Finding(
        "swarm manager",
        False,
        f'{found}, and placement = "swarm" needs a manager',
        "run `docker swarm init --advertise-addr <this host's address>` here (or run minibinder "
        'on a manager), or set placement = "local"',
    )


def node_findings(nodes: list[dict[str, Any]]) -> list[Finding]:
    """Each node's readiness."""
    down = [node_name(node) for node in nodes if not node_ready(node)]
    ready = len(nodes) - len(down)
    found = [
        Finding("swarm nodes", True, f"{ready} ready")
        if not down
        else Finding(
            "swarm nodes",
            False,
            f"{ready} ready; not ready: {', '.join(down)}",
            "bring them back, or `docker node rm` the ones that are gone (their sessions "
            "ended as 'node lost')",
            warning=ready > 0,
        )
    ]
    return found


def agent_findings(
    nodes: list[dict[str, Any]],
    records: dict[str, NodeRecord | None],
    probe: str,
    now: float,
    version: str = __version__,
    floor: int = 0,
) -> list[Finding]:
    """What the ready nodes' agents said: that they run (and which version), the node's
    no-new-privileges default, its disk (against `floor`), its rules, and whether it pulled
    `probe` ("": not pushed)."""
    ready = {node["ID"]: node_name(node) for node in nodes if node_ready(node)}
    fresh = {i: r for i, r in records.items() if i in ready and r and now - r.at <= STALE_SECONDS}
    silent = [ready[i] for i in ready if i not in fresh]
    findings = [
        Finding(
            "agents",
            not silent,
            f"{len(fresh)} of {len(ready)} ready node(s) report"
            + (f"; silent: {', '.join(silent)}" if silent else ""),
            AGENT_FIX,
        )
    ]
    if not fresh:
        return findings
    other = [f"{ready[i]} runs {r.version}" for i, r in fresh.items() if r.version != version]
    findings.append(
        Finding(
            "agent version",
            not other,
            "; ".join(other) if other else f"every agent runs {version}, as this manager",
            "run the same minibinder image on every node (update the agent's service)",
        )
    )
    without = [ready[i] for i, r in fresh.items() if r.no_new_privileges is False]
    unknown = [ready[i] for i, r in fresh.items() if r.no_new_privileges is None]
    findings.append(
        Finding(
            "no-new-privileges",
            not without,
            f"sessions run without it on: {', '.join(without)}"
            if without
            else "sessions run with it on every node"
            + (f" that ran one (not known yet on {', '.join(unknown)})" if unknown else ""),
            'add "no-new-privileges": true to /etc/docker/daemon.json on those nodes and '
            "restart their engine (Docker 20.10 services cannot ask for it)",
        )
    )
    low = [
        f"{ready[i]}: {r.disk_free / 2**30:.1f} GiB free"
        for i, r in fresh.items()
        if r.disk_free is not None and r.disk_free < floor
    ]
    findings.append(
        Finding(
            "node disk",
            not low,
            "; ".join(low) if low else "every node has room for images",
            "the agent removes unused images above image_gc_high; free space on those "
            "nodes, or drain them (`docker node update --availability drain`)",
            warning=True,
        )
    )
    broken = [f"{ready[i]}: {r.rules}" for i, r in fresh.items() if r.rules]
    findings.append(
        Finding(
            "node rules",
            not broken,
            "; ".join(broken)
            if broken
            else "egress rules and manager-only session ports in place on every node",
            "the agent needs NET_ADMIN, host network and iptables",
        )
    )
    if not probe:
        findings.append(
            Finding("nodes can pull", False, "not checked: the registry took no push", warning=True)
        )
        return findings
    failed = [
        f"{ready[i]}: {r.pull_error}" for i, r in fresh.items() if r.pull_error.startswith(probe)
    ]
    waiting = [
        ready[i]
        for i, r in fresh.items()
        if r.pulled != probe and not r.pull_error.startswith(probe)
    ]
    if failed:
        found = "pull failed on " + "; ".join(failed)
    elif waiting:
        found = f"not pulled yet on {', '.join(waiting)} (run doctor again after a report)"
    else:
        found = f"every reporting node pulled {probe.rsplit('@', 1)[-1][:19]}…"
    findings.append(
        Finding(
            "nodes can pull",
            not failed and not waiting,
            found,
            "every node's daemon must trust the registry (TLS, or insecure-registries) "
            "and reach it; with credentials, give the agent registry_credentials_file",
            warning=bool(waiting) and not failed,
        )
    )
    return findings


def swarm_findings(
    config: Config,
    docker: Docker,
    wait: float = PULL_WAIT_SECONDS,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Finding]:
    api = SwarmApi(docker)
    try:
        manager = manager_finding(api.swarm_state())
    except DockerUnavailable as error:
        return [Finding("swarm manager", False, str(error))]
    findings = [manager]
    if not manager.ok:
        return findings
    registry, probe = registry_finding(config, docker, api)
    findings.append(registry)
    nodes = api.nodes()
    findings += node_findings(nodes)
    database = config.data_path / "minibinder.sqlite"
    if not database.exists():
        findings.append(
            Finding(
                "agents",
                False,
                "no agent has reported: minibinder serve has not run with this data directory",
                AGENT_FIX,
            )
        )
        return findings
    store = Store(database)
    if probe:
        store.remember(PROBE_FACT, probe)
    ids = [node["ID"] for node in nodes]
    deadline = clock() + (wait if probe else 0)
    while True:
        found = agent_findings(
            nodes, node_records(store, ids), probe, clock(), floor=config.disk_free_floor
        )
        pending = [f for f in found if f.name in ("agents", "nodes can pull") and not f.ok]
        if not pending or clock() >= deadline:
            return findings + found
        sleep(1.0)


def registry_finding(config: Config, docker: Docker, api: SwarmApi) -> tuple[Finding, str]:
    """Push a tiny image (one small file) to the registry, as the first launch of an image
    will; the finding, and the pushed image's reference by digest ("" when it failed)."""
    try:
        if docker.image_id(PROBE_IMAGE) is None:
            request = BuildRequest(PROBE_IMAGE, 64 * 2**20, fileobj=io.BytesIO(_probe_context()))
            for chunk in docker.build(request):
                if chunk.get("error"):
                    raise BuildError(f"the probe image did not build: {chunk['error'][:200]}")
        log_in(api, config)
        repository, tag = pushed_name(config.registry, PROBE_IMAGE)
        digest = api.push(PROBE_IMAGE, repository, tag)
    except (BuildError, LaunchError, ConfigError, DockerUnavailable) as error:
        return Finding(
            "registry",
            False,
            f"{config.registry} did not take a push: {error}",
            "check registry, registry_credentials_file, and that this engine trusts the "
            "registry (TLS, or insecure-registries in daemon.json on every node)",
        ), ""
    reference = f"{repository}@{digest}"
    return Finding("registry", True, f"{config.registry} takes pushes ({digest[:19]}…)"), reference


def _probe_context() -> bytes:
    """A build context: an image of one small file."""
    buffer = io.BytesIO()
    files = {"Dockerfile": b"FROM scratch\nCOPY probe /probe\n", "probe": b"minibinder doctor\n"}
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, content in files.items():
            member = tarfile.TarInfo(name)
            member.size = len(content)
            archive.addfile(member, io.BytesIO(content))
    return buffer.getvalue()
