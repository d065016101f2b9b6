"""`minibinder agent`: one swarm node's duties, reported to the manager (swarm/agent.py).

It reads no settings file: the manager's URL, the cluster key's file and the node's own
particulars are its options; the node's engine is DOCKER_HOST's (or the default socket).
"""

from __future__ import annotations

import logging
import os
import signal
import stat
import threading
from pathlib import Path

import click


def read_key(path: str) -> bytes:
    """The per-cluster key from its file, which only its owner may read."""
    try:
        mode = os.stat(path).st_mode
        text = Path(path).read_text().strip()
    except OSError as error:
        raise click.ClickException(
            f"--key-file {path}: cannot read it ({error.strerror})"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise click.ClickException(
            f"--key-file {path}: others may read it; `chmod 600 {path}` (the key signs reports)"
        )
    if len(text) < 32:
        raise click.ClickException(f"--key-file {path}: too short to be the cluster key")
    return text.encode()


@click.command("agent")
@click.option(
    "--manager",
    "manager_url",
    required=True,
    help="URL the manager's minibinder is reached at from this node.",
)
@click.option(
    "--key-file",
    required=True,
    type=click.Path(dir_okay=False),
    help="The cluster key: agent_key in the manager's data directory (a secret).",
)
@click.option(
    "--interval",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0.5, 3600),
    help="Seconds between reports.",
)
@click.option(
    "--bridge",
    default="docker0",
    show_default=True,
    help="The bridge sessions run on, on this node.",
)
@click.option(
    "--allow-from",
    multiple=True,
    help="Address allowed to reach sessions here (default: the manager's).",
)
@click.option(
    "--proc-root",
    default="/proc",
    show_default=True,
    help="Where this node's /proc is (/host/proc inside the agent's service).",
)
@click.option(
    "--cgroup-root",
    default="/sys/fs/cgroup",
    show_default=True,
    help="Where this node's cgroup files are.",
)
@click.option(
    "--docker-root",
    default="",
    help="The engine's data directory as seen here (default: what the engine says).",
)
@click.option(
    "--registry-credentials-file",
    default="",
    type=click.Path(dir_okay=False),
    help="`user:password` for pulling the doctor's probe from the registry.",
)
@click.option("--no-rules", is_flag=True, help="Install no firewall rules (not for production).")
@click.option("--once", is_flag=True, help="Report once and exit.")
def agent(
    manager_url: str,
    key_file: str,
    interval: float,
    bridge: str,
    allow_from: tuple[str, ...],
    proc_root: str,
    cgroup_root: str,
    docker_root: str,
    registry_credentials_file: str,
    no_rules: bool,
    once: bool,
) -> None:
    """Report this swarm node's sessions (CPU, out-of-memory kills), its no-new-privileges
    default, disk and pulls to the manager; keep its session rules and collect its images."""
    import docker

    from ..errors import ConfigError
    from ..swarm.agent import Agent
    from ..swarm.plan import read_credentials

    logging.basicConfig(level=logging.INFO, format="%(asctime)s agent %(levelname)s %(message)s")
    key = read_key(key_file)
    credentials = None
    if registry_credentials_file:
        try:
            text = Path(registry_credentials_file).read_text()
            credentials = read_credentials(text, registry_credentials_file)
        except (OSError, ConfigError) as error:
            raise click.ClickException(str(error)) from None
    api = docker.APIClient(
        base_url=os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock",
        version="auto",
        timeout=60,
    )
    runner = Agent(
        api,
        manager_url,
        key,
        interval,
        bridge,
        allow_from,
        Path(proc_root),
        Path(cgroup_root),
        docker_root,
        not no_rules,
        credentials,
    )
    if once:
        runner.round()
        return
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    runner.run(stop)
