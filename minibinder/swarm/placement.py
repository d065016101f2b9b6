"""Sessions as one-replica services of a Docker Swarm (`placement = "swarm"`).

minibinder runs on a manager node and talks to that node's engine only. An image is pushed to
`registry` the first time a session of it starts (the digest remembered per image id) and every
node pulls it by digest; the swarm's scheduler places the service by memory reservation; the
session is reached at the port its node publishes for it (reach "node"), which is recorded with
the session like any other endpoint.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from ..config import Config
from ..docker_client import Docker
from ..docker_services import SwarmApi
from ..errors import ConfigError, LaunchError
from ..placement import Endpoint, SessionContainer, State
from ..store import Store
from .plan import TaskView, found_entry, pushed_name, read_credentials, seats, service_spec, view_of

log = logging.getLogger(__name__)


class SwarmPlacement:
    """The placement the launcher uses in a swarm; see `placement.Placement`."""

    def __init__(self, config: Config, docker: Docker, store: Store, port: int):
        self.config, self.docker, self.store = config, docker, store
        self.port = port  # the port sessions' servers listen on
        self.api = SwarmApi(docker)
        self._logged_in = False
        self._push_lock = threading.Lock()

    # -- images -----------------------------------------------------------------------------

    def image_ref(self, image: str) -> str:
        """`image` as the nodes pull it: pushed to the registry once, named by its digest."""
        image_id = self.docker.image_id(image)
        if image_id is None:
            raise LaunchError(f"image {image} is gone; build it again")
        fact = f"registry {self.config.registry} digest of {image_id}"
        with self._push_lock:
            known = self.store.fact(fact)
            if known:
                return known
            self._log_in()
            repository, tag = pushed_name(self.config.registry, image)
            digest = self.api.push(image, repository, tag)
            reference = f"{repository}@{digest}"
            self.store.remember(fact, reference)
            log.info("pushed %s to %s", image, reference)
            return reference

    def _log_in(self) -> None:
        if not self._logged_in:
            log_in(self.api, self.config)
            self._logged_in = True

    # -- Placement --------------------------------------------------------------------------

    def start(self, container: SessionContainer) -> str:
        return self.api.create_service(service_spec(container, self.image_ref(container.image)))

    def endpoint(self, handle: str, reach: str, port: int) -> Endpoint:
        view = self._view(handle, port)
        return Endpoint(view.target, view.node) if view.state == "running" else Endpoint("")

    def state(self, handle: str) -> State:
        view = self._view(handle, 0)
        if view.state in ("running", "starting"):
            return view.state  # type: ignore[return-value]
        return "ended"

    def logs(self, handle: str) -> str:
        view = self._view(handle, 0)
        said = f"the swarm says: {view.message}\n" if view.message else ""
        return said + self.api.service_logs(handle)

    def remove(self, handle: str) -> None:
        self.api.remove_service(handle)

    def found(self, label: str) -> list[dict[str, Any]]:
        services = self.api.services(label)
        if not services:
            return []
        nodes = self._nodes()
        tasks_by_service: dict[str, list[dict[str, Any]]] = {}
        for task in self.api.tasks([service["ID"] for service in services]):
            tasks_by_service.setdefault(task.get("ServiceID", ""), []).append(task)
        return [
            found_entry(service, view_of(tasks_by_service.get(service["ID"], []), nodes, self.port))
            for service in services
        ]

    def seats(self, reservation: int, headroom: int) -> int | None:
        return seats(self.api.nodes(), reservation, headroom)

    def _view(self, handle: str, port: int) -> TaskView:
        return view_of(self.api.tasks([handle]), self._nodes(), port)

    def _nodes(self) -> dict[str, dict[str, Any]]:
        return {node["ID"]: node for node in self.api.nodes()}


def log_in(api: SwarmApi, config: Config) -> None:
    """Give `api` the registry's credentials, when registry_credentials_file names them."""
    path = config.registry_credentials_file
    if not path:
        return
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise ConfigError(
            f"registry_credentials_file {path}: cannot read it ({error.strerror})"
        ) from None
    user, password = read_credentials(text, path)
    api.use_credentials(config.registry, user, password)
