"""What `minibinder build` does with its argument: a spec, a clone URL or a directory."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from ..builds.base_image import ensure_base_image
from ..builds.images import (
    BuildTarget,
    build_image,
    generated_dockerfile,
    target_for_directory,
    target_for_source,
)
from ..config import Config
from ..datadir import make_private
from ..docker_client import Docker
from ..errors import DockerUnavailable, SpecError
from ..events import Event
from ..identity import instance_id
from ..networks import ensure_egress
from ..repos.fetch import FetchLimits, fetch_commit
from ..repos.providers import PROVIDERS, parse_spec, source_from_url

Runner = Callable[[Iterator[Event]], Event]


def pick_target(config: Config, repository: str, ref: str | None) -> BuildTarget:
    if Path(repository).is_dir():
        if ref:
            raise SpecError("--ref does not apply to a local directory; check out the ref there")
        return target_for_directory(Path(repository), config)
    if re.match(r"^[a-z]+://", repository):
        return target_for_source(source_from_url(repository, ref or "HEAD", config), config)
    if repository.split("/", 1)[0] in PROVIDERS:
        if ref:
            raise SpecError("--ref applies to clone URLs; a spec names its ref as its last part")
        return target_for_source(parse_spec(repository, config), config)
    raise SpecError(
        f"{repository!r} is neither a directory, a clone URL (https://...) nor a "
        f"spec like gh/owner/repo/HEAD"
    )


def build_command(
    config: Config,
    repository: str,
    ref: str | None,
    show_dockerfile: bool,
    no_cache: bool,
    run: Runner,
) -> Event:
    target = pick_target(config, repository, ref)
    if show_dockerfile:
        return Event("built", _dockerfile_for(target, config))
    docker = Docker.connect()
    ensure_egress(config, docker, instance_id(config))
    return run(
        _chain(ensure_base_image(config, docker), build_image(target, config, docker, no_cache))
    )


def _chain(*steps: Iterator[Event]) -> Iterator[Event]:
    for step in steps:
        yield from step


def _dockerfile_for(target: BuildTarget, config: Config) -> str:
    try:
        docker: Docker | None = Docker.connect(timeout=10)
    except DockerUnavailable:
        docker = None  # the Dockerfile is shown without what needs the base image
    if target.local_dir is not None:
        return generated_dockerfile(target.local_dir, config, docker)
    make_private(config.data_path)
    with tempfile.TemporaryDirectory(dir=config.data_path) as workdir:
        limits = FetchLimits.from_config(config)
        repo = Path(workdir) / "repo"
        assert target.source is not None
        for _ in fetch_commit(target.repo_url, target.ref, repo, limits, ref=target.source.ref):
            pass
        return generated_dockerfile(repo, config, docker)
