"""The environment step of a build: what the pure plan left open, settled with the network.

A conda environment file is solved and installed from its channels (an environment image the
repository image starts from); when no channel answers, `conda_fallback` decides between a clear
failure and installing the same packages from the Python package index. A Python version no base
image has is taken from a conda channel, else `python_fallback` decides. R is settled in
`prepare_r`. Every decision is said in the build log in one line.
"""

from __future__ import annotations

import shlex
from collections.abc import Generator
from pathlib import Path

from ..config import Config
from ..docker_client import Docker
from ..errors import BuildError, BuildpackError
from ..events import Event
from .buildpacks.base import BuildPlan, install_command
from .buildpacks.python import DEPS_DIR, refers_to_repository
from .environments.conda import (
    JUPYTER_SPECS,
    ChannelUnreachable,
    Unsatisfiable,
    channel_urls,
    environment_image,
    platform_subdir,
)
from .environments.conda_shim import unavailable_conda_step
from .environments.envfile import CondaEnvironment, RepositoryLock, parse_conda_lock, parse_explicit
from .environments.pypi import translate
from .environments.pythons import PythonRequest, choose_python, show
from .prepare_r import settle_r

PIP_FILE = "environment-pip.txt"
PYPI_FILE = "environment-pypi.txt"


def prepare_environment(
    plan: BuildPlan, config: Config, docker: Docker, scratch: Path
) -> Generator[Event, None, None]:
    """Settle `plan` (base image, install steps), yielding what was decided as log lines."""
    if plan.conda_lock is not None and plan.conda is not None:
        yield from _locked(plan, plan.conda, plan.conda_lock, config, docker, scratch)
    elif plan.conda is not None:
        yield from _conda(plan, plan.conda, config, docker, scratch)
    elif plan.python_request is not None:
        yield from _python_version(plan, config, docker, scratch)
    if plan.r is not None:
        settle_r(plan, config, docker)
    for notice in plan.notices:
        if notice:  # the launch page shows these above the log, too
            yield Event("building", notice.rstrip("\n") + "\n", {"notice": True})


def _python_version(
    plan: BuildPlan, config: Config, docker: Docker, scratch: Path
) -> Generator[Event, None, None]:
    request = plan.python_request
    assert request is not None
    wanted = request.exact  # a range no base image meets goes straight to the fallback
    if wanted is not None:
        try:
            channels = channel_urls([], config)
            image = yield from environment_image(
                [f"python {show(wanted)}.*", *JUPYTER_SPECS],
                channels,
                config.base_images[config.default_python],
                config,
                docker,
                scratch,
            )
        except (ChannelUnreachable, Unsatisfiable) as error:
            plan.notices.append(
                f"{request.source} asks for Python {request.text}, which no base image "
                f"provides; from a conda channel: {error}"
            )
        else:
            plan.base_image, plan.python_version = image.name, show(wanted)
            plan.notices.append(
                f"Python {show(wanted)} for {request.source}: a conda environment "
                f"({image.packages} packages, {image.how})"
            )
            return
    _fallback_python(plan, request, config)


def _conda(
    plan: BuildPlan, environment: CondaEnvironment, config: Config, docker: Docker, scratch: Path
) -> Generator[Event, None, None]:
    specs = [spec.match_spec for spec in environment.specs]
    channels = channel_urls(environment.channels, config)
    try:
        image = yield from environment_image(
            specs, channels, plan.base_image, config, docker, scratch
        )
    except ChannelUnreachable as error:
        if config.conda_fallback != "pypi":
            raise BuildError(
                f"{environment.where}: {error}. This server does not install conda "
                'environments from the Python package index (conda_fallback = "fail").'
            ) from None
        _pypi_instead(plan, environment, config, str(error))
    else:
        plan.base_image = image.name
        plan.notices.append(
            f"{environment.where}: conda environment from {', '.join(channels)} "
            f"({image.packages} packages, {image.how}"
            + (", Jupyter runs from it)" if image.has_python else "; its tools come first on PATH)")
        )
        _pip_section(plan, environment, config)


def _locked(
    plan: BuildPlan,
    environment: CondaEnvironment,
    lock: RepositoryLock,
    config: Config,
    docker: Docker,
    scratch: Path,
) -> Generator[Event, None, None]:
    """A repository's own lock: exactly its packages, never solved (no PyPI fallback either:
    a lock names conda builds)."""
    pins: tuple[str, ...] = ()
    if lock.kind == "conda-lock":
        packages, pins = parse_conda_lock(lock.text, lock.where, platform_subdir())
    else:
        packages = parse_explicit(lock.text, lock.where)
    try:
        image = yield from environment_image(
            [], [], plan.base_image, config, docker, scratch, locked=packages
        )
    except ChannelUnreachable as error:
        if not environment.specs:  # no unlocked file beside it: the lock is all there is
            raise BuildError(f"{lock.where}: {error}") from None
        plan.notices.append(
            f"{lock.where}: its packages cannot be fetched ({error}); resolving "
            f"{environment.where} instead"
        )
        yield from _conda(plan, environment, config, docker, scratch)
        return
    plan.base_image = image.name
    plan.notices.append(
        f"{lock.where}: conda environment from the repository's lock ({image.packages} "
        f"packages, {image.how})"
    )
    pip = environment.pip + pins
    _pip_section(plan, CondaEnvironment(environment.where or lock.where, (), (), pip), config)


def _pypi_instead(
    plan: BuildPlan, environment: CondaEnvironment, config: Config, reason: str
) -> None:
    translation = translate(environment, unreachable=reason, mirror=bool(config.conda_channels))
    summary = translation.summary()
    plan.notices.append(
        f"{environment.where}: {reason}; installing its packages from the Python package index "
        'instead (conda_fallback = "pypi")' + (f": {summary}" if summary else "")
    )
    _fallback_python(plan, environment.python_request(), config)
    plan.system_steps.append(unavailable_conda_step(environment.where))
    if translation.requirements:
        plan.dependency_files[PYPI_FILE] = ("\n".join(translation.requirements) + "\n").encode()
        plan.pre_repo_steps.append(install_command(f"-r {DEPS_DIR}/{PYPI_FILE}", config))
    _pip_section(plan, environment, config)


def _fallback_python(plan: BuildPlan, request: PythonRequest | None, config: Config) -> None:
    """The base image for `request` under `python_fallback` (its warning, if any, noted). A
    lock made for the Python asked for is then installed from its unlocked file instead: its
    exact versions were chosen for that Python and often do not install on another."""
    choice = choose_python(
        request, config.python_versions(), config.default_python, config.python_fallback
    )
    plan.python_version = choice.version
    plan.base_image = config.base_images[choice.version]
    plan.notices.append(choice.warning)
    if choice.warning and plan.unlocked is not None:
        lock, unlocked, requirements = plan.unlocked
        plan.dependency_files["requirements.txt"] = requirements
        names = ", ".join(line.split()[0] for line in requirements.decode().splitlines()[:8])
        plan.notices.append(
            f"{lock} was made for Python {request.text if request else '?'}, which this server "
            f"lacks: installing {unlocked}'s packages ({names or 'none'}) for Python "
            f"{choice.version} instead"
        )


def _pip_section(plan: BuildPlan, environment: CondaEnvironment, config: Config) -> None:
    """The file's `pip:` lines: packages before the repository is copied (a cached layer);
    lines naming the repository's files after it, run from the environment file's folder."""
    packages = [line for line in environment.pip if not refers_to_repository(line)]
    local = [line for line in environment.pip if refers_to_repository(line)]
    if packages:
        plan.dependency_files[PIP_FILE] = ("\n".join(packages) + "\n").encode()
        plan.pre_repo_steps.append(install_command(f"-r {DEPS_DIR}/{PIP_FILE}", config))
    folder = environment.where.rpartition("/")[0]
    for index, line in enumerate(local):
        step = install_command(_shell_words(line, environment.where), config)
        plan.post_repo_steps.insert(index, f"cd {folder} && {step}" if folder else step)


def _shell_words(line: str, where: str) -> str:
    """One pip line as shell-quoted arguments."""
    try:
        return " ".join(shlex.quote(word) for word in shlex.split(line))
    except ValueError as error:
        raise BuildpackError(f"{where}: cannot read the pip line {line!r}: {error}") from None
