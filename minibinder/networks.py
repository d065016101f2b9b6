"""The Docker networks builds and sessions run on, and the egress rules that guard them.

Sessions share one network (`session_network`) on which they cannot reach each other. Every
build gets a network of its own, removed when it ends: a repository's own Dockerfile runs its
RUN steps as root with Docker's default capabilities (NET_RAW among them: the classic builder
cannot drop it), and alone on its bridge a build has no neighbour to spoof or listen to. Both
kinds of bridge are covered by the rules of `firewall`, the build bridges by one name prefix.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from .config import Config
from .docker_client import Docker
from .engines import shares_netfilter
from .errors import ConfigError, DockerUnavailable
from .firewall import (
    EgressPolicy,
    FirewallError,
    allowed_networks,
    chain_prefix,
    host_resolvers,
    install,
    repository_services,
    resolve_ipv4,
)
from .identity import INSTANCE_LABEL

log = logging.getLogger(__name__)
PURPOSE_LABEL = "minibinder.network"
PID_LABEL = "minibinder.pid"  # the process whose build a build network serves


def session_bridge(config: Config, docker: Docker, instance: str) -> str:
    """Make the sessions' network if missing; the name of its bridge interface."""
    labels = {PURPOSE_LABEL: "sessions", INSTANCE_LABEL: instance}
    return docker.ensure_network(config.session_network, labels, bridge=f"mbs{instance[:12]}")


def build_bridge_prefix(instance: str) -> str:
    return f"mbb{instance[:8]}"


@contextlib.contextmanager
def build_network(docker: Docker, instance: str) -> Iterator[str]:
    """A network for one build, alone on its bridge; removed afterwards."""
    suffix = secrets.token_hex(2)
    name = f"minibinder-build-{instance[:8]}-{suffix}"
    labels = {PURPOSE_LABEL: "build", INSTANCE_LABEL: instance, PID_LABEL: str(os.getpid())}
    docker.ensure_network(name, labels, bridge=build_bridge_prefix(instance) + suffix)
    try:
        yield name
    finally:
        docker.remove_network(name)


def sweep_build_networks(docker: Docker, instance: str, older_than: float) -> int:
    """Remove build networks left by builds that ended abruptly (a worker killed mid-build):
    those whose process is gone, or older than any build may take. Docker has room for a few
    dozen networks only; leaving them would stop every build."""
    removed = 0
    for network in docker.networks(f"{INSTANCE_LABEL}={instance}"):
        labels = network.get("Labels") or {}
        if labels.get(PURPOSE_LABEL) != "build":
            continue
        created = _timestamp(network.get("Created", ""))
        too_old = created is not None and time.time() - created > older_than
        if too_old or not _alive(labels.get(PID_LABEL, "")):
            docker.remove_network(network["Name"])
            removed += 1
    return removed


def _alive(pid: str) -> bool:
    if not pid.isdigit():
        return True  # not ours to judge: wait for its age
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _timestamp(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text[:19] + "+00:00").timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class EgressStatus:
    installed: bool
    message: str


def egress_policy(config: Config, docker: Docker, instance: str) -> EgressPolicy:
    """The rules for this installation's bridges, with names resolved now."""
    bridges = (session_bridge(config, docker, instance), build_bridge_prefix(instance) + "+")
    # The conda channels too: an environment image's mamba/conda installs from them in
    # postBuild and in sessions.
    configured = (
        config.package_index_url,
        config.npm_registry_url,
        r_repository_url(config),
        config.conda_channel_alias,
        *config.conda_channels,
    )
    repositories = [url for url in configured if url]
    mirrors = [urlsplit(url).hostname or "" for url in repositories]
    allowed = allowed_networks([*config.egress_allow, *filter(None, mirrors)], resolve_ipv4)
    services = repository_services(repositories, resolve_ipv4)
    return EgressPolicy(chain_prefix(instance), bridges, allowed, host_resolvers(), services)


def r_repository_url(config: Config) -> str:
    """The R package repository's address (its path's {codename} and {date} do not matter)."""
    parts = urlsplit(config.r_package_repository.replace("{", "").replace("}", ""))
    return f"{parts.scheme}://{parts.netloc}/" if parts.netloc else ""


def ensure_egress(config: Config, docker: Docker, instance: str) -> EgressStatus:
    """Install (or re-install) the egress rules as `egress_filter` says.

    "required" raises ConfigError when they cannot be installed; "auto" logs a warning and
    carries on (a laptop without root); "off" does nothing.
    """
    if config.egress_filter == "off":
        return EgressStatus(False, "egress rules are off (egress_filter = off)")
    facts = docker.engine_facts()
    try:
        if facts is not None and not shares_netfilter(facts):
            raise FirewallError(
                f"{facts.label} keeps its containers off this host's firewall, where "
                "minibinder's rules would go"
            )
        install(egress_policy(config, docker, instance))
    except (FirewallError, DockerUnavailable) as error:
        message = f"egress rules are not installed: {error}"
        if config.egress_filter == "required":
            raise ConfigError(f"{message} (egress_filter = required)") from None
        log.warning(
            "%s; builds and sessions can reach the host and private networks "
            '(egress_filter = "auto")',
            message,
        )
        return EgressStatus(False, message)
    return EgressStatus(True, "egress rules are installed")
