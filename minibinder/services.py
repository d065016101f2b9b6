"""What one process needs, made once and handed around: settings, the store, Docker, the
sessions and the proxy's route table, wired so that no domain imports another."""

from __future__ import annotations

from dataclasses import dataclass

from .config import Config
from .docker_client import Docker
from .proxy.routes import RouteTable
from .sessions.launcher import JUPYTER_PORT, Sessions
from .store import Store
from .swarm.placement import SwarmPlacement


@dataclass
class Services:
    config: Config
    store: Store
    sessions: Sessions
    docker: Docker
    routes: RouteTable


def create_services(config: Config, docker: Docker | None = None) -> Services:
    store = Store(config.data_path / "minibinder.sqlite")

    def running_target(session_id: str) -> str | None:
        record = store.get_session(session_id)
        return record.target if record and record.state == "running" and record.target else None

    routes = RouteTable(running_target, store.touch_sessions)
    docker = docker or Docker.lazy()
    placement = (
        SwarmPlacement(config, docker, store, JUPYTER_PORT) if config.placement == "swarm" else None
    )
    sessions = Sessions(config, docker, store, routes.forget, placement)
    return Services(config, store, sessions, docker, routes)
