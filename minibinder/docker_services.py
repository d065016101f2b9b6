"""The Docker Swarm half of the engine's API: services, tasks, nodes, and pushing to a registry.

With `docker_client` the only modules that import `docker`; Docker's errors become
minibinder's here. Asked of the manager's engine only: the manager never needs another node's
socket.
"""

from __future__ import annotations

import contextlib
from typing import Any

import docker.errors

from .docker_client import Docker, _daemon, _short
from .errors import LaunchError


class SwarmApi:
    """The calls a swarm placement makes, on the manager's engine."""

    def __init__(self, docker_: Docker):
        self._api = docker_.low_level_api
        self._auth: dict[str, str] | None = None

    def swarm_state(self) -> dict[str, Any]:
        """`docker info`'s Swarm section (LocalNodeState, ControlAvailable, NodeID…)."""
        with _daemon():
            return self._api.info().get("Swarm") or {}

    def nodes(self) -> list[dict[str, Any]]:
        with _daemon():
            return self._api.nodes()

    def services(self, label: str) -> list[dict[str, Any]]:
        with _daemon():
            return self._api.services(filters={"label": label})

    def tasks(self, service_ids: list[str]) -> list[dict[str, Any]]:
        """The tasks of these services."""
        with _daemon():
            try:
                return self._api.tasks(filters={"service": service_ids})
            except docker.errors.NotFound:
                return []

    def create_service(self, spec: dict[str, Any]) -> str:
        """Create a service from its full spec (Name, Labels, TaskTemplate, Mode,
        EndpointSpec, as the API takes it); return its id."""
        with _daemon():
            try:
                created = self._api.create_service(
                    spec["TaskTemplate"],
                    name=spec["Name"],
                    labels=spec["Labels"],
                    mode=spec["Mode"],
                    endpoint_spec=spec["EndpointSpec"],
                )
            except docker.errors.APIError as error:
                raise LaunchError(f"the swarm refused the session: {_short(error)}") from None
        return created["ID"]

    def remove_service(self, service_id: str) -> None:
        """Remove a service (its task's container goes with it); gone already is fine."""
        with _daemon(), contextlib.suppress(docker.errors.NotFound):
            self._api.remove_service(service_id)

    def service_logs(self, service_id: str, tail: int = 20) -> str:
        """The last lines a service's tasks wrote (the manager fetches them from the node)."""
        try:
            chunks = self._api.service_logs(
                service_id, stdout=True, stderr=True, tail=tail, follow=False
            )
            return b"".join(chunks).decode(errors="replace")
        except (docker.errors.APIError, docker.errors.DockerException):
            return ""

    def use_credentials(self, registry: str, user: str, password: str) -> None:
        """Log in to `registry`: pushes and the nodes' pulls (the service's X-Registry-Auth)
        carry the credentials from now on."""
        self._auth = {"username": user, "password": password}
        with _daemon():
            try:
                self._api.login(user, password=password, registry=registry, reauth=True)
            except docker.errors.APIError as error:
                raise LaunchError(
                    f"the registry {registry} refused the login: {_short(error)}"
                ) from None

    def push(self, image: str, repository: str, tag: str) -> str:
        """Tag `image` as repository:tag, push it, return the digest the registry gave it."""
        digest = ""
        with _daemon("the push"):
            try:
                self._api.tag(image, repository, tag)
                for chunk in self._api.push(
                    repository, tag=tag, stream=True, decode=True, auth_config=self._auth
                ):
                    if chunk.get("error"):
                        raise LaunchError(f"pushing {image} failed: {chunk['error'][:300]}")
                    digest = (chunk.get("aux") or {}).get("Digest", digest)
            except docker.errors.APIError as error:
                raise LaunchError(f"pushing {image} failed: {_short(error)}") from None
        if not digest:
            raise LaunchError(f"the registry gave no digest for {image}")
        return digest
