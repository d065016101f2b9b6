"""What `minibinder doctor` checks in swarm placement: this engine is a manager, the registry
takes a push, every node is ready, and what only the nodes themselves can tell.

`manager_finding` and `node_findings` are pure (the engine's answers in, findings out);
`swarm_findings` asks the manager's engine and pushes one tiny probe image.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from typing import Any

from ..config import Config
from ..docker_client import BuildRequest, Docker
from ..docker_services import SwarmApi
from ..errors import BuildError, ConfigError, DockerUnavailable, LaunchError
from .placement import log_in
from .plan import node_name, node_ready, pushed_name

PROBE_IMAGE = "minibinder-doctor-probe:latest"


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
    """Each node's readiness, and the duties no check from the manager can see."""
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
    found.append(
        Finding(
            "node settings",
            False,
            "not checked from here: every node's /etc/docker/daemon.json needs "
            '"no-new-privileges": true and "icc": false, and its session ports open to the '
            "manager only (minibinder agent, which would check this, is not built yet)",
            "see the README, 'Outgrowing one machine'",
            warning=True,
        )
    )
    return found


def swarm_findings(config: Config, docker: Docker) -> list[Finding]:
    api = SwarmApi(docker)
    try:
        manager = manager_finding(api.swarm_state())
    except DockerUnavailable as error:
        return [Finding("swarm manager", False, str(error))]
    findings = [manager]
    if not manager.ok:
        return findings
    findings.append(registry_finding(config, docker, api))
    findings += node_findings(api.nodes())
    return findings


def registry_finding(config: Config, docker: Docker, api: SwarmApi) -> Finding:
    """Push a tiny image (one small file) to the registry, as the first launch of an image
    will."""
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
        )
    return Finding("registry", True, f"{config.registry} takes pushes ({digest[:19]}…)")


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
