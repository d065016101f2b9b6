"""The only module that imports `docker`: Docker errors become minibinder errors here."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import IO, Any

import docker
import docker.errors
import requests.exceptions

from .errors import BuildError, DockerUnavailable

_UNREACHABLE = (requests.exceptions.ConnectionError, docker.errors.DockerException)


class Docker:
    """A thin wrapper over docker-py with the handful of calls minibinder makes."""

    def __init__(self, client: docker.DockerClient):
        self._client = client

    @classmethod
    def connect(cls, timeout: int = 60) -> Docker:
        try:
            client = docker.from_env(timeout=timeout)
            client.ping()
        except _UNREACHABLE as error:
            raise DockerUnavailable(
                f"the Docker daemon does not answer ({_short(error)}); start it, "
                "e.g. with scripts/ensure-docker.sh") from None
        return cls(client)

    def image_labels(self, name: str) -> dict[str, str] | None:
        """The labels of an image, or None when no image has that name."""
        try:
            image = self._client.api.inspect_image(name)
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.NotFound:
            return None
        except _UNREACHABLE as error:
            raise DockerUnavailable(f"the Docker daemon does not answer ({_short(error)})") \
                from None
        return (image.get("Config") or {}).get("Labels") or {}

    def build(self, *, tag: str, labels: dict[str, str], memory: int,
              fileobj: IO[bytes] | None = None, path: str | None = None,
              dockerfile: str | None = None, buildargs: dict[str, str] | None = None,
              no_cache: bool = False) -> Iterator[dict[str, Any]]:
        """Stream the decoded build output chunks of the classic builder."""
        try:
            yield from self._client.api.build(
                fileobj=fileobj, custom_context=fileobj is not None, path=path,
                dockerfile=dockerfile, tag=tag, labels=labels, buildargs=buildargs or {},
                container_limits={"memory": memory, "memswap": memory},
                rm=True, forcerm=True, pull=False, nocache=no_cache, decode=True)
        except docker.errors.APIError as error:
            raise BuildError(f"Docker refused the build: {_short(error)}") from None
        except _UNREACHABLE as error:
            raise DockerUnavailable(f"the Docker daemon stopped answering during the build "
                                    f"({_short(error)})") from None

    def kill_container(self, container_id: str) -> None:
        """Kill a container; one that is already gone counts as killed."""
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            self._client.api.kill(container_id)

    def remove_image(self, name: str) -> None:
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            self._client.api.remove_image(name, force=True)

    def tag_image(self, source: str, target: str) -> None:
        repository, _, tag = target.rpartition(":")
        self._client.api.tag(source, repository, tag)


def _short(error: Exception) -> str:
    text = getattr(error, "explanation", None) or str(error)
    return str(text).strip().splitlines()[0][:300] if str(text).strip() else type(error).__name__
