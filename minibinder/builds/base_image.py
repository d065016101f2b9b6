"""Build minibinder's base image (Python + JupyterLab + uv + jovyan) on a root filesystem image."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterator
from importlib import resources

from .. import __version__
from ..config import Config, read_extra_ca
from ..docker_client import BuildRequest, Docker
from ..events import Event
from .docker_build import run_build
from .rootfs import ensure_rootfs

DEFAULT_ROOTFS = "debian:bookworm-slim"


def _dockerfile() -> bytes:
    return resources.files(__package__).joinpath("base.Dockerfile").read_bytes()


def base_hash(config: Config, rootfs: str) -> str:
    """Everything the base image is made of; a change means it must be built again."""
    digest = hashlib.sha256()
    for part in (
        _dockerfile(),
        read_extra_ca(config),
        config.package_index_url.encode(),
        config.npm_registry_url.encode(),
        rootfs.encode(),
    ):
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:16]


def base_context(config: Config) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        files = (("Dockerfile", _dockerfile()), ("extra-ca.crt", read_extra_ca(config)))
        for name, content in files:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    buffer.seek(0)
    return buffer


def build_base_image(
    config: Config, docker: Docker, rootfs: str, tag: str, force: bool = False
) -> Iterator[Event]:
    """Build `tag` from `rootfs` unless an image of that tag with the same settings exists."""
    labels = {
        "minibinder.base": "1",
        "minibinder.version": __version__,
        "minibinder.base-hash": base_hash(config, rootfs),
        "minibinder.rootfs": rootfs,
    }
    existing = docker.image_labels(tag)
    if (
        existing
        and existing.get("minibinder.base-hash") == labels["minibinder.base-hash"]
        and not force
    ):
        yield Event("built", f"Base image {tag} exists\n", {"imageName": tag, "cached": True})
        return
    buildargs = {
        "ROOTFS": rootfs,
        "PACKAGE_INDEX_URL": config.package_index_url,
        "NPM_REGISTRY_URL": config.npm_registry_url,
    }
    request = BuildRequest(
        tag, config.build_memory_limit, labels, fileobj=base_context(config), buildargs=buildargs
    )
    yield from run_build(docker, request, config.build_timeout)
    yield Event("built", f"Built base image {tag}\n", {"imageName": tag, "cached": False})


def base_image_from(
    config: Config, docker: Docker, rootfs: str, tag: str, force: bool = False
) -> Iterator[Event]:
    """Build `tag` on `rootfs`, found, pulled or made with debootstrap first (rootfs.py)."""
    found = rootfs
    for event in ensure_rootfs(docker, rootfs):
        if event.phase == "built":
            found = event.data["imageName"]
        yield event
    yield from build_base_image(config, docker, found, tag, force)


def ensure_base_image(config: Config, docker: Docker) -> Iterator[Event]:
    """Make the default Python's base image if the engine lacks it (the first `serve` or
    `build` after `pipx install`), from base_rootfs."""
    tag = config.base_images.get(config.default_python, "")
    if not tag or docker.image_labels(tag) is not None:
        return
    yield Event("building", f"The base image {tag} is missing: making it (once) ...\n")
    yield from base_image_from(config, docker, config.base_rootfs, tag)
