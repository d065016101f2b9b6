"""conda environments, solved and installed by minibinder on the host with rattler (py-rattler:
a conda solver and installer in one wheel, no conda or mamba binary to fetch), then copied into
an environment image that repository images start from.

The host does the network work (channel repodata, package downloads: mirrors, proxies and the
extra CA apply once, in one place) and the build only copies files, so an environment image is
made once per environment file and base image and shared by every commit and every repository
that names the same packages. The solved package list is kept as a lock file, beside the
environment in the image and in the data directory, and an identical file is never solved twice.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
import platform
import shutil
import tempfile
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import rattler

from ... import __version__
from ...config import Config
from ...docker_client import BuildRequest, Docker
from ...errors import BuildError, BuildpackError, MinibinderError
from ...events import Event
from ...identity import INSTANCE_LABEL, instance_id
from ...repos.urlpolicy import Resolver, internal, local_name_or_address, resolve_addresses
from ..context import make_prefix_context
from ..docker_build import run_build
from .conda_shim import HOME as COMMAND_HOME
from .conda_shim import write_conda_command
from .envfile import LockedPackage

ENV_PREFIX = "/srv/conda/envs/notebook"
# Added when an environment holds Python, so that the Jupyter server runs from it.
JUPYTER_SPECS = ("jupyterlab >=4,<5", "notebook >=7,<8", "ipykernel", "pip")
LOCK_NAME = "minibinder-lock.yml"
FORMAT = "1"  # bump when the way environments are made changes
MAX_ENVIRONMENT_BYTES = 32 * 2**30  # a sanity bound; the solver decides what is installed


class Unsatisfiable(BuildError):
    """The channels have no set of packages that meets the specs; the message names them."""


class ChannelUnreachable(MinibinderError):
    """No answer from a conda channel (DNS, refused, timeout, not a channel). `origin` says
    which setting named it, when one did (the operator's mirror)."""

    def __init__(self, channel: str, reason: str, origin: str = ""):
        super().__init__(
            f"conda channel {channel} unreachable: {reason}" + (f" ({origin})" if origin else "")
        )
        self.channel, self.reason, self.origin = channel, reason, origin


DEFAULT_ALIAS = "https://conda.anaconda.org"


def channel_origin(url: str, config: Config) -> str:
    """Which setting a channel URL comes from, said in errors: the operator's mirror should
    be named as such, not taken for a channel the repository chose."""
    if url.rstrip("/") in {c.rstrip("/") for c in config.conda_channels}:
        return "the mirror set in conda_channels"
    alias = config.conda_channel_alias.rstrip("/")
    if alias != DEFAULT_ALIAS and url.startswith(alias + "/"):
        return "under the mirror set in conda_channel_alias"
    return ""


def platform_subdir() -> str:
    machine = platform.machine().lower()
    subdirs = {
        "x86_64": "linux-64",
        "amd64": "linux-64",
        "aarch64": "linux-aarch64",
        "arm64": "linux-aarch64",
        "ppc64le": "linux-ppc64le",
    }
    return subdirs.get(machine, "linux-64")


def channel_urls(named: Sequence[str], config: Config) -> list[str]:
    """The channels to ask: the operator's list when set, else the file's (conda-forge when it
    names none), names expanded with `conda_channel_alias`. Each must pass the host policy."""
    chosen = list(config.conda_channels) or list(named) or ["conda-forge"]
    alias = config.conda_channel_alias.rstrip("/")
    urls = [c.rstrip("/") if "://" in c else f"{alias}/{c}" for c in chosen]
    for url in urls:
        check_channel_host(url, config.internal_hosts, operator=bool(config.conda_channels))
    return urls


def check_channel_host(
    url: str, internal_hosts: Sequence[str], operator: bool = False, resolve: Resolver | None = None
) -> None:
    """https:// to public hosts; plain http:// and loopback, private or link-local addresses
    only for hosts the operator lists in `internal_hosts` (an internal mirror, the tests' own
    channel). The operator's own `conda_channels` may also be file:// paths.

    Without `resolve`, only what the URL says is checked (names and IP literals); with it, the
    addresses the host resolves to as well, as for git hosts. A host that does not resolve is
    left to fail as unreachable.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if operator and parts.scheme == "file":
        return
    if host in {h.lower() for h in internal_hosts}:
        if parts.scheme in ("http", "https"):
            return
    elif (
        parts.scheme == "https"
        and not local_name_or_address(host)
        and (resolve is None or not any(internal(address) for address in resolve(host)))
    ):
        return
    raise BuildpackError(
        f"conda channel {url} is not allowed: channels must be https:// URLs of public hosts "
        "(plain http and internal addresses only for hosts listed in internal_hosts)"
    )


def lock_key(specs: Sequence[str], channels: Sequence[str], subdir: str) -> str:
    """What a solve depends on: the specs, the channels, the platform."""
    text = json.dumps([FORMAT, sorted(specs), list(channels), subdir])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class EnvironmentImage:
    name: str
    has_python: bool
    packages: int
    how: str  # "solved" | "lock reused" | "image reused"


def environment_image(
    specs: Sequence[str],
    channels: Sequence[str],
    base_image: str,
    config: Config,
    docker: Docker,
    scratch: Path,
    locked: Sequence[LockedPackage] = (),
) -> Generator[Event, None, EnvironmentImage]:
    """The image of `base_image` plus this environment at ENV_PREFIX: found, or made.

    With `locked` (a repository's own lock), exactly those packages are installed, unsolved.
    """
    subdir = platform_subdir()
    base_id = docker.image_id(base_image)
    if base_id is None:
        raise BuildError(f"base image {base_image} is missing; `minibinder base-image` builds it")
    sources = [p.url.rsplit("/", 2)[0] for p in locked] if locked else list(channels)
    for source in dict.fromkeys(sources):  # now with DNS: what the names resolve to counts
        check_channel_host(
            source, config.internal_hosts, bool(config.conda_channels), resolve=resolve_addresses
        )
    if locked:
        specs = [f"{package.url}#{package.sha256 or package.md5}" for package in locked]
        channels = ["(the repository's lock)"]
    key = lock_key(specs, channels, subdir)
    # The channel alias is in the image too: its conda command expands `-c name` with it.
    made_with = key + base_id + IMAGE_FORMAT + config.conda_channel_alias
    image_key = hashlib.sha256(made_with.encode()).hexdigest()[:20]
    tag = f"{config.image_prefix}conda-env:{image_key}"
    existing = docker.image_labels(tag)
    if existing is not None:
        has_python = existing.get("minibinder.conda-python") == "1"
        count = int(existing.get("minibinder.conda-packages", "0"))
        return EnvironmentImage(tag, has_python, count, "image reused")
    folder = config.data_path / "conda"
    lock_path = folder / "locks" / f"{key}.yml"
    records = records_from_lock(locked) if locked else read_lock(lock_path)
    how = "the repository's lock, not solved" if locked else "lock reused"
    if records is None:
        how = "solved"
        yield Event("building", f"Solving the conda environment from {', '.join(channels)}\n")
        try:
            records = solve(specs, channels, folder, config.conda_solve_timeout)
            missing = _missing_jupyter(records)
            if missing:  # the Jupyter server will run from it, or R needs its kernel
                records = solve([*specs, *missing], channels, folder, config.conda_solve_timeout)
        except ChannelUnreachable as error:
            origin = channel_origin(error.channel, config)
            raise ChannelUnreachable(error.channel, error.reason, origin) from None
    if not lock_path.is_file():
        write_lock(records, lock_path, subdir)
    has_python = any(r.name.normalized == "python" for r in records)
    yield Event("building", f"Installing {len(records)} conda packages ({how})\n")
    work = Path(tempfile.mkdtemp(prefix="conda-", dir=scratch))
    try:
        prefix = work / "prefix"
        install(records, prefix, folder / "pkgs")
        shutil.copyfile(lock_path, prefix / "conda-meta" / LOCK_NAME)
        write_conda_command(work / "tools", prefix, ENV_PREFIX, sources, config.conda_channel_alias)
        # The instance label puts it among the images collection may remove under disk
        # pressure (images built from it keep their layers; the next build makes it again).
        labels = {
            "minibinder.conda-env": key,
            "minibinder.conda-python": "1" if has_python else "0",
            "minibinder.conda-packages": str(len(records)),
            "minibinder.version": __version__,
            INSTANCE_LABEL: instance_id(config),
        }
        # Without Python the server stays in the base environment; kernels the environment
        # brings (r-irkernel's) are found through JUPYTER_PATH.
        python = (
            f"ENV CONDA_PREFIX={ENV_PREFIX}\n"
            if has_python
            else f"ENV JUPYTER_PATH={ENV_PREFIX}/share/jupyter\n"
        )
        dockerfile = DOCKERFILE.format(
            base=base_image, prefix=ENV_PREFIX, python=python, tools=COMMAND_HOME
        )
        with make_prefix_context(
            prefix, dockerfile, work, MAX_ENVIRONMENT_BYTES, tools=work / "tools"
        ) as context:
            request = BuildRequest(tag, config.build_memory_limit, labels, context)
            yield from run_build(docker, request, config.build_timeout)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return EnvironmentImage(tag, has_python, len(records), how)


def _missing_jupyter(records: list[rattler.RepoDataRecord]) -> list[str]:
    """What the environment needs for Jupyter: the server and ipykernel when it holds Python,
    R's kernel when it holds R (as repo2docker adds it)."""
    names = {record.name.normalized for record in records}
    missing = ["r-irkernel"] if "r-base" in names and "r-irkernel" not in names else []
    if "python" not in names:
        return missing
    return [spec for spec in JUPYTER_SPECS if spec.split()[0] not in names] + missing


def solve(
    specs: Sequence[str], channels: Sequence[str], folder: Path, timeout: float
) -> list[rattler.RepoDataRecord]:
    async def run() -> list[rattler.RepoDataRecord]:
        gateway = rattler.Gateway(cache_dir=folder / "repodata")
        return await rattler.solve(
            [rattler.Channel(url) for url in channels],
            list(specs),
            gateway=gateway,
            platforms=[rattler.Subdir(platform_subdir()), rattler.Subdir("noarch")],
            virtual_packages=rattler.VirtualPackage.detect(),
            timeout=datetime.timedelta(seconds=timeout),
        )

    try:
        return asyncio.run(run())
    except Exception as error:  # rattler raises its own exception classes
        raise _explain(error, channels) from None


def _explain(error: Exception, channels: Sequence[str]) -> MinibinderError:
    kind, text = type(error).__name__, str(error).strip()
    if kind == "SolverError":
        reason = text.removeprefix("Cannot solve the request because of:").strip()
        return Unsatisfiable(f"the conda environment cannot be solved: {reason}")
    if kind in ("GatewayError", "FetchRepoDataError", "TimeoutError") or "timed out" in text:
        causes = [line.strip() for line in text.splitlines() if line.strip()]
        reason = causes[-1].removeprefix("Caused by:").strip() if causes else kind
        channel = next((c for c in channels if c in text), channels[0] if channels else "?")
        return ChannelUnreachable(channel, reason)
    return BuildError(f"the conda environment could not be made: {kind}: {text[:500]}")


def install(records: list[rattler.RepoDataRecord], prefix: Path, cache: Path) -> None:
    """Link the packages into `prefix` with ENV_PREFIX written into their files (they are copied
    there in the image); link scripts are never run on the host."""

    async def run() -> None:
        await rattler.install(
            records,
            target_prefix=prefix,
            cache_dir=cache,
            alternative_target_prefix=ENV_PREFIX,
            execute_link_scripts=False,
            show_progress=False,
        )

    try:
        asyncio.run(run())
    except Exception as error:
        raise BuildError(f"installing the conda packages failed: {error}") from None
    (prefix / "CACHEDIR.TAG").unlink(missing_ok=True)


def records_from_lock(packages: Sequence[LockedPackage]) -> list[rattler.RepoDataRecord]:
    """Records for packages named by URL (`name-version-build.conda`), checked by their hash
    when they are installed."""
    records = []
    for package in packages:
        stem = package.filename.removesuffix(".conda").removesuffix(".tar.bz2")
        name, version, build = stem.rsplit("-", 2)
        number = build.rsplit("_", 1)[-1]
        try:
            build_string = rattler.BuildString(build)
        except ValueError:
            raise BuildError(f"{package.url}: {build!r} is not a conda build string") from None
        record = rattler.PackageRecord(
            name,
            version,
            build_string,
            int(number) if number.isdigit() else 0,
            package.subdir,
            sha256=bytes.fromhex(package.sha256) if package.sha256 else None,
            md5=bytes.fromhex(package.md5) if package.md5 else None,
        )
        channel = package.url.rsplit("/", 2)[0]
        records.append(rattler.RepoDataRecord(record, package.filename, package.url, channel))
    return records


def read_lock(path: Path) -> list[rattler.RepoDataRecord] | None:
    if not path.is_file():
        return None
    try:
        environment = rattler.LockFile.from_path(path).environment("default")
        if environment is None:
            return None
        platforms = environment.platforms()
        return environment.conda_repodata_records_for_platform(platforms[0]) or None
    except Exception:  # an unreadable lock is solved again
        return None


def write_lock(records: list[rattler.RepoDataRecord], path: Path, subdir: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_platform = rattler.LockPlatform(subdir)
    lock = rattler.LockFile([lock_platform])
    for record in records:
        lock.add_conda_package("default", lock_platform, record)
    partial = path.with_suffix(".partial")
    lock.to_path(partial)
    partial.replace(path)


IMAGE_FORMAT = "3"  # changes when DOCKERFILE does: images made by the old one are not reused
DOCKERFILE = """\
# The conda environment minibinder solved and installed (rattler), copied in whole, and the
# mamba/conda command that installs more into it.
FROM {base}
COPY --chown=1000:1000 env/ {prefix}/
COPY --chown=1000:1000 tools/ {tools}/
{python}"""
