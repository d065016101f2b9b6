"""Disk space: the floor below which builds are refused, and image collection by watermarks."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from .. import metrics
from ..config import Config
from ..docker_client import Docker
from ..errors import BuildError
from ..store import Store

log = logging.getLogger(__name__)
IMAGE_LABEL = "minibinder.repo"
T = TypeVar("T")


@dataclass(frozen=True)
class ImageInfo:
    name: str
    size: int
    last_used: float
    in_use: bool


def docker_disk_path(config: Config) -> str:
    """The path whose disk the watermarks and the floor measure."""
    return config.docker_root if os.path.exists(config.docker_root) else str(config.data_path)


def docker_disk(config: Config):  # shutil.disk_usage's (total, used, free)
    return shutil.disk_usage(docker_disk_path(config))


def disk_used_and_total(config: Config) -> tuple[int, int]:
    """What the watermarks compare (image collection, kept work): bytes used and in all."""
    disk = docker_disk(config)
    return disk.used, disk.total


def check_build_space(config: Config, free_bytes: int | None = None) -> None:
    """Refuse a build, before anything is made, when the disk is below its floor."""
    free = docker_disk(config).free if free_bytes is None else free_bytes
    floor = config.disk_free_floor
    if free < floor:
        raise BuildError(
            f"Not enough disk space to build: {free / 2**30:.1f} GiB free, this "
            f"server keeps at least {floor / 2**30:.1f} GiB free "
            "(disk_free_floor). Unused images are removed automatically; "
            "please try again later."
        )


def removal_order(images: list[ImageInfo]) -> list[ImageInfo]:
    """Images that may go, least recently launched first; never one a session uses."""
    return sorted(
        (image for image in images if not image.in_use),
        key=lambda image: (image.last_used, image.name),
    )


def trim_to_watermarks(
    config: Config,
    usage: Callable[[], tuple[int, int]] | None,
    candidates: Callable[[], Iterable[T]],
    remove: Callable[[T], None],
) -> list[T]:
    """The watermarks, for every user of the disk (images, kept work): at or above
    image_gc_high, `remove` the `candidates` in order until use is below image_gc_low. The
    candidates are asked for only then. `usage` (bytes used, in all) defaults to the disk
    Docker's data is on. Returns what went."""
    usage = usage or (lambda: disk_used_and_total(config))
    used, total = usage()
    if used * 100 < config.image_gc_high * total:
        return []
    removed = []
    for candidate in candidates():
        if used * 100 < config.image_gc_low * total:
            break
        remove(candidate)
        removed.append(candidate)
        used, total = usage()
    return removed


def collect_images(
    config: Config,
    docker: Docker,
    store: Store,
    instance: str,
    usage: Callable[[], tuple[int, int]] | None = None,
) -> list[str]:
    """Above the high watermark, remove this installation's images (labelled with `instance`)
    until disk use is below the low one."""

    def candidates() -> list[ImageInfo]:
        in_use = {c.get("Image") for c in docker.containers("minibinder.session")}
        last_used = store.image_last_used()
        images = [
            ImageInfo(
                name,
                found.get("Size", 0),
                last_used.get(name, float(found.get("Created", 0))),
                name in in_use or found["Id"] in in_use,
            )
            for found in docker.images(f"minibinder.instance={instance}")
            for name in found.get("RepoTags") or []
        ]
        return removal_order(images)

    def remove(image: ImageInfo) -> None:
        docker.remove_image(image.name)
        store.forget_image(image.name)
        metrics.IMAGES_REMOVED.inc()
        log.info("removed image %s (disk above %s%%)", image.name, config.image_gc_high)

    return [image.name for image in trim_to_watermarks(config, usage, candidates, remove)]
