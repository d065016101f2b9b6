"""The R part of the environment step. R comes from the base image's Debian release (read from
the image), or another base's whose release has the version asked for, or `r_builds`, else
`r_fallback` decides. Its packages come from the R package repository when it answers (asked
once, from the host); when it does not, `r_package_fallback` decides between Debian's
`r-cran-*` binaries and a clear failure. Every decision is said in the build log in one line.
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request

from ..config import Config, read_extra_ca
from ..docker_client import Docker
from ..errors import BuildError
from .buildpacks.base import BuildPlan
from .environments.pythons import show
from .environments.r_packages import choose_r_packages, debian_packages_step
from .environments.r_runtime import (
    DEBIAN_R,
    choose_r,
    kernel_step,
    r_layer_step,
    repository_url,
    site_profile_step,
)

PROBE_SECONDS = 10.0


def settle_r(plan: BuildPlan, config: Config, docker: Docker) -> None:
    """R for the plan's base image: its layer, its kernel and where its packages come from.

    A version the base's Debian release does not have is taken, exactly, from another base
    image whose release has it when the repository did not ask for a Python version (the
    Python then is that base's), else from r_builds, else r_fallback decides. Packages come
    from the R package repository when it answers, else r_package_fallback decides.
    """
    request = plan.r
    assert request is not None
    codename = debian_codename(docker, plan.base_image)
    wanted, found = request.version, DEBIAN_R.get(codename)
    if wanted is not None and wanted != found and not plan.python_pinned:
        other = _base_with_r(wanted, plan, config, docker)
        if other is not None:
            plan.python_version, plan.base_image, codename = other
            found = wanted
            plan.notices.append(
                f"R {show(wanted)} for {request.source} comes with Debian "
                f"{codename}, so this image has its Python {other[0]}"
            )
    choice = choose_r(request, found, config.r_builds, config.r_fallback)
    url = repository_url(config.r_package_repository, codename, request.date)
    plan.system_steps.append(r_layer_step(choice))
    if not choice.from_builds:  # Debian's IRkernel needs no package repository
        plan.system_steps.append(kernel_step(from_builds=False))
    plan.system_steps.append(site_profile_step(url))
    if choice.from_builds:
        plan.system_steps.append(kernel_step(from_builds=True))
    origin = f"from {choice.from_builds}" if choice.from_builds else f"Debian {codename}'s"
    plan.notices.append(choice.warning)
    plan.notices.append(
        f"R {show(choice.version)} ({origin}) for {request.source}; R packages from {url}"
    )
    packages = plan.r_packages
    if packages is None or not (packages.names or packages.unread):
        return  # nothing asks the repository for anything
    source = choose_r_packages(
        packages,
        url,
        repository_problem(url, config),
        config.r_package_fallback,
        codename,
        choice.from_builds,
    )
    if source.from_debian:
        plan.system_steps.append(debian_packages_step(packages, codename))
        plan.notices.append(source.notice)


def repository_problem(url: str, config: Config, timeout: float = PROBE_SECONDS) -> str:
    """Empty when the R package repository at `url` serves its index (what install.packages
    reads first), else what went wrong, as a user would want it said."""
    index = url.rstrip("/") + "/src/contrib/PACKAGES"
    context = ssl.create_default_context()
    extra = read_extra_ca(config)
    if extra.strip():
        context.load_verify_locations(cadata=extra.decode())
    request = urllib.request.Request(index, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context):
            return ""
    except urllib.error.HTTPError as error:
        if error.code in (405, 501):  # it answers, only not to HEAD
            return ""
        return f"HTTP {error.code} for {index}"
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        return f"{reason} for {index}" if str(reason) else f"no answer from {index}"


def _base_with_r(
    wanted: tuple[int, int], plan: BuildPlan, config: Config, docker: Docker
) -> tuple[str, str, str] | None:
    """(Python version, base image, codename) of a configured base whose Debian has `wanted`;
    only plain base images (a conda environment image stays)."""
    if plan.base_image not in config.base_images.values():
        return None
    for version, image in config.base_images.items():
        try:
            codename = debian_codename(docker, image)
        except BuildError:  # a base not built on this host
            continue
        if DEBIAN_R.get(codename) == wanted:
            return version, image, codename
    return None


_codenames: dict[str, str] = {}


def debian_codename(docker: Docker, image: str) -> str:
    """The Debian release an image is made from (VERSION_CODENAME), "" when it does not say."""
    image_id = docker.image_id(image)
    if image_id is None:
        raise BuildError(f"base image {image} is missing; `minibinder base-image` builds it")
    if image_id not in _codenames:
        text = (docker.image_file(image_id, "/usr/lib/os-release") or b"").decode(errors="replace")
        found = [
            line.partition("=")[2].strip().strip('"')
            for line in text.splitlines()
            if line.startswith("VERSION_CODENAME=")
        ]
        _codenames[image_id] = found[0] if found else ""
    return _codenames[image_id]
