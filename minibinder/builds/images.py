"""Images of repositories: name them, and turn a pinned request into one (fetch → detect →
render → docker build), shared between identical requests and cached by label."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..config import Config
from ..docker_client import BuildRequest, Docker
from ..errors import BuildError, MinibinderError
from ..events import Event
from ..identity import COMMIT_TIME_LABEL, instance_id
from ..networks import build_network
from ..repos.fetch import FetchLimits, commit_time, fetch_commit
from ..repos.providers import RepoSource, get_provider
from .buildpacks import BuildPlan, plan_build, read_repo_config, render_dockerfile
from .context import make_context, make_repository_context
from .disk import check_build_space
from .docker_build import run_build
from .prepare import prepare_environment
from .prepare_r import settle_r
from .sharing import followed, release_slot, run_shared, take_slot, work_folder

LABEL = "minibinder"


def image_slug(repo_url: str) -> str:
    """A Docker-safe, readable, collision-free name for a repository URL."""
    readable = re.sub(r"^[a-z+]+://", "", repo_url.lower())
    readable = re.sub(r"[^a-z0-9]+", "-", readable).strip("-")[:60].strip("-")
    digest = hashlib.sha256(repo_url.encode()).hexdigest()[:8]
    return f"{readable}-{digest}"


def image_name(prefix: str, repo_url: str, tag: str) -> str:
    return f"{prefix}{image_slug(repo_url)}:{tag}"


@dataclass(frozen=True)
class BuildTarget:
    """A request pinned to one commit (or one directory state) and the image it becomes."""

    image: str
    repo_url: str
    ref: str
    spec: str
    source: RepoSource | None = None
    local_dir: Path | None = None

    @property
    def key(self) -> str:
        return image_slug(self.image)


def target_for_source(source: RepoSource, config: Config, cached: bool = False) -> BuildTarget:
    """Resolve the ref (one `git ls-remote`, or a recent answer when `cached`), name the image."""
    sha = get_provider(source.provider).resolve(source, config, cached)
    return BuildTarget(
        image=image_name(config.image_prefix, source.repo_url, sha),
        repo_url=source.repo_url,
        ref=sha,
        spec=source.provider_spec,
        source=source,
    )


def directory_digest(root: Path) -> str:
    """A content hash of a working tree (without .git): equal trees give equal image tags."""
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not (folder == str(root) and d == ".git"))
        for name in sorted(files):
            path = os.path.join(folder, name)
            relative = os.path.relpath(path, root)
            info = os.lstat(path)
            digest.update(f"{relative}\0{info.st_mode & 0o111}\0".encode())
            if os.path.islink(path):
                digest.update(os.readlink(path).encode())
            elif os.path.isfile(path):
                with open(path, "rb") as handle:
                    while block := handle.read(1 << 20):
                        digest.update(block)
    return digest.hexdigest()[:40]


def target_for_directory(path: Path, config: Config) -> BuildTarget:
    root = path.resolve()
    url = f"local:{root}"
    return BuildTarget(
        image=image_name(config.image_prefix, url, directory_digest(root)),
        repo_url=url,
        ref="",
        spec=str(root),
        local_dir=root,
    )


def image_labels(target: BuildTarget, config: Config, buildpack: str) -> dict[str, str]:
    return {
        f"{LABEL}.repo": target.repo_url,
        f"{LABEL}.ref": target.ref,
        f"{LABEL}.spec": target.spec,
        f"{LABEL}.version": __version__,
        f"{LABEL}.config-hash": config.build_hash(),
        f"{LABEL}.buildpack": buildpack,
        # Image collection considers only the images of the installation that built them.
        f"{LABEL}.instance": instance_id(config),
    }


def is_cached(docker: Docker, target: BuildTarget, config: Config) -> bool:
    labels = docker.image_labels(target.image)
    return labels is not None and labels.get(f"{LABEL}.config-hash") == config.build_hash()


def generated_dockerfile(repo_dir: Path, config: Config, docker: Docker | None = None) -> str:
    """The Dockerfile minibinder would build for a checkout (the repository's own if any).

    R's steps depend on the base image's Debian release: with `docker` they are shown as the
    build would run them, without it a comment says they are left out.
    """
    repo = read_repo_config(repo_dir)  # read without following symlinks out of the checkout
    plan = plan_build(repo, config)
    if plan.dockerfile:
        return repo.text("Dockerfile")
    if plan.r is not None and docker is not None:
        settle_r(plan, config, docker)
    text = _environment_comment(plan) + render_dockerfile(plan)
    if plan.r is not None and docker is None:
        text += (
            "# R's steps are left out: they depend on the base image, and Docker did not answer\n"
        )
    return text


def _environment_comment(plan: BuildPlan) -> str:
    """The conda environment is solved and installed on the host, into an image of its own that
    replaces the FROM line while building: say so, and what goes in it, so the plan is honest."""
    if plan.conda is None:
        return ""
    env = plan.conda
    source = f"its lock {plan.conda_lock.where}" if plan.conda_lock else "a solve kept for reuse"
    channels = ", ".join(env.channels) or "the operator's default"
    lines = [
        f"# {env.where}: solved and installed by minibinder on the host (rattler, from {source})",
        "# into an environment image of its own, which replaces the FROM line below when building.",
        f"# Channels: {channels}",
        "# Packages: " + (", ".join(spec.line.strip() for spec in env.specs) or "none"),
    ]
    if env.pip:
        lines.append("# Then with pip, into the same environment: " + ", ".join(env.pip))
    return "\n".join(lines) + "\n"


def build_image(
    target: BuildTarget,
    config: Config,
    docker: Docker,
    no_cache: bool = False,
    cancelled: threading.Event | None = None,
) -> Iterator[Event]:
    """Yield progress events ending in `built` (with `imageName`) or `failed` (with a reason).

    `cancelled` is set when the requester went away: a build nobody else follows is then
    given up while it waits for a slot, and stopped while it runs.
    """
    if not no_cache and is_cached(docker, target, config):
        yield _built(target, cached=True)
        return
    folder = config.data_path / "builds"

    def abandoned() -> bool:
        return cancelled is not None and cancelled.is_set() and not followed(target.key, folder)

    yield from run_shared(
        target.key, folder, lambda: _leader(target, config, docker, no_cache, abandoned)
    )


def _leader(
    target: BuildTarget,
    config: Config,
    docker: Docker,
    no_cache: bool,
    abandoned: Callable[[], bool],
) -> Iterator[Event]:
    try:
        if not no_cache and is_cached(docker, target, config):  # built while we waited
            yield _built(target, cached=True)
            return
        check_build_space(config)
        slot = take_slot(config.data_path / "build-slots", config.max_concurrent_builds)
        if slot is None:
            yield Event(
                "waiting",
                f"Waiting for a free build slot ({config.max_concurrent_builds}"
                " builds are running)\n",
            )
            while slot is None:
                if abandoned():
                    raise BuildError(
                        "cancelled while waiting for a build slot: nobody is "
                        "waiting for this build any more"
                    )
                time.sleep(1)
                slot = take_slot(config.data_path / "build-slots", config.max_concurrent_builds)
        try:
            with work_folder(config.data_path / "work") as workdir:
                yield from _fetch_and_build(target, config, docker, no_cache, workdir, abandoned)
        finally:
            release_slot(slot)
    except MinibinderError as error:
        yield Event("failed", str(error))


def _fetch_and_build(
    target: BuildTarget,
    config: Config,
    docker: Docker,
    no_cache: bool,
    workdir: Path,
    abandoned: Callable[[], bool] = lambda: False,
) -> Iterator[Event]:
    started = time.monotonic()
    if target.local_dir is not None:
        repo_dir = target.local_dir
    else:
        assert target.source is not None
        repo_dir = workdir / "repo"
        limits = FetchLimits.from_config(config)
        for line in fetch_commit(
            target.repo_url, target.ref, repo_dir, limits, ref=target.source.ref
        ):
            yield Event("fetching", line + "\n")
    plan = plan_build(read_repo_config(repo_dir), config)
    labels = image_labels(target, config, plan.buildpack)
    committed = commit_time(repo_dir, config.allowed_clone_schemes) if target.source else None
    if committed is not None:
        labels[COMMIT_TIME_LABEL] = str(committed)
    memory = config.build_memory_limit
    yield Event("building", f"Building {target.image} with the {plan.buildpack} buildpack\n")
    yield from prepare_environment(plan, config, docker, workdir)
    max_bytes, include_git = config.clone_max_size, target.local_dir is None
    with contextlib.ExitStack() as stack:
        if plan.dockerfile:  # the repository's own: labels are given to the build
            context = stack.enter_context(
                make_repository_context(repo_dir, workdir, max_bytes, include_git)
            )
            dockerfile, build_labels = plan.dockerfile, labels
        else:  # minibinder's: the labels are in the Dockerfile
            rendered = render_dockerfile(plan, labels)
            context = stack.enter_context(
                make_context(repo_dir, plan, rendered, workdir, max_bytes, include_git)
            )
            dockerfile, build_labels = None, {}
        network = stack.enter_context(build_network(docker, instance_id(config)))
        request = BuildRequest(
            target.image,
            memory,
            build_labels,
            fileobj=context,
            dockerfile=dockerfile,
            no_cache=no_cache,
            network=network,
        )
        yield from run_build(
            docker, request, config.build_timeout, abandoned, config.build_log_limit
        )
    yield _built(target, cached=False, seconds=time.monotonic() - started)


def _built(target: BuildTarget, cached: bool, seconds: float = 0.0) -> Event:
    message = "Found built image\n" if cached else f"Built image in {seconds:.1f} s\n"
    return Event("built", message, {"imageName": target.image, "cached": cached})
