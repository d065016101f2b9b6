"""What every buildpack shares: the repository snapshot, the plan, apt.txt, postBuild and start."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ...config import Config
from ...errors import BuildpackError
from ..environments.envfile import CondaEnvironment, RepositoryLock
from ..environments.pythons import PythonRequest, choose_python, parse_request, parse_version
from ..environments.r_packages import RPackages
from ..environments.r_runtime import RRequest

# Files whose content (not just presence) buildpacks read. Anything else is only copied.
CONFIG_FILES = (
    "requirements.txt",
    "setup.py",
    "pyproject.toml",
    "Pipfile",
    "Pipfile.lock",
    "environment.yml",
    "environment.yaml",
    "conda-lock.yml",
    "conda-linux-64.lock",
    "apt.txt",
    "postBuild",
    "start",
    "runtime.txt",
    "Dockerfile",
    "install.R",
    "DESCRIPTION",
    "Project.toml",
    "REQUIRE",
    "default.nix",
)
ROOT_ONLY = ("setup.py", "pyproject.toml", "DESCRIPTION")
MAX_CONFIG_BYTES = 1024 * 1024
APT_NAME_RE = re.compile(r"[a-z0-9][a-z0-9.+-]*")
REPO_DIR = "/home/jovyan"


@dataclass(frozen=True)
class RepoConfig:
    """The configuration files of a checkout: which folder counts, and the files' contents."""

    config_dir: str  # "", "binder" or ".binder"
    files: dict[str, bytes]

    def has(self, name: str) -> bool:
        return name in self.files

    def text(self, name: str) -> str:
        return self.files[name].decode("utf-8", errors="replace")

    def path(self, name: str) -> str:
        """Path of a config file relative to the repository root."""
        return f"{self.config_dir}/{name}" if self.config_dir else name


@dataclass
class BuildPlan:
    """Everything the Dockerfile template needs, as plain data."""

    buildpack: str
    python_version: str
    base_image: str = ""
    apt_packages: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    system_steps: list[str] = field(default_factory=list)  # as root, before apt.txt
    # Files placed in the build context beside the repository, installed before it is copied.
    dependency_files: dict[str, bytes] = field(default_factory=dict)
    pre_repo_steps: list[str] = field(default_factory=list)
    post_repo_steps: list[str] = field(default_factory=list)
    executables: list[str] = field(default_factory=list)
    start_script: str | None = None
    dockerfile: str | None = None  # a repository's own Dockerfile, relative to the root
    # Decided while building, not here (they need the network): a conda environment to solve,
    # and a Python version no base image provides (a conda channel may, else the fallback).
    conda: CondaEnvironment | None = None
    conda_lock: RepositoryLock | None = None
    python_request: PythonRequest | None = None
    python_pinned: bool = False  # the repository asked for a Python version
    r: RRequest | None = None  # R: which version comes from the base image's Debian release
    # What install.R and DESCRIPTION ask the R package repository for (Debian's instead when it
    # does not answer).
    r_packages: RPackages | None = None
    notices: list[str] = field(default_factory=list)  # shown in the build log
    # A lock made for a Python this server lacks is re-resolved from its unlocked file when the
    # Python fallback applies: (the lock, the unlocked file, the requirements it lists).
    unlocked: tuple[str, str, bytes] | None = None


def _read_inside(root: Path, relative: str) -> bytes | None:
    """Read a file of the checkout, refusing symlinks that lead outside it."""
    path = root / relative
    if not os.path.lexists(path):
        return None
    real_root = root.resolve()
    real = path.resolve()
    if not real.is_relative_to(real_root):
        raise BuildpackError(
            f"{relative} is a symbolic link to outside the repository; "
            "minibinder does not follow it"
        )
    if real.is_dir():
        return None
    if real.stat().st_size > MAX_CONFIG_BYTES:
        raise BuildpackError(f"{relative} is larger than 1 MiB")
    return real.read_bytes()


def read_repo_config(root: Path) -> RepoConfig:
    """Snapshot the configuration files of a checkout (the only I/O in buildpacks)."""
    found = []
    for folder in ("binder", ".binder"):
        candidate = root / folder
        if os.path.lexists(candidate):
            if not candidate.resolve().is_relative_to(root.resolve()):
                raise BuildpackError(
                    f"{folder}/ is a symbolic link to outside the repository; "
                    "minibinder does not follow it"
                )
            if candidate.is_dir():
                found.append(folder)
    if len(found) > 1:
        raise BuildpackError("the repository has both binder/ and .binder/; keep only one")
    config_dir = found[0] if found else ""
    files = {}
    for name in CONFIG_FILES:
        if config_dir and name in ROOT_ONLY:
            continue
        content = _read_inside(root, f"{config_dir}/{name}" if config_dir else name)
        if content is not None:
            files[name] = content
    return RepoConfig(config_dir, files)


def parse_apt_txt(text: str) -> list[str]:
    packages = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        for name in line.split():
            if not APT_NAME_RE.fullmatch(name):
                raise BuildpackError(
                    f"apt.txt line {number}: {name!r} is not a Debian package "
                    "name (lowercase letters, digits, '.', '+', '-')"
                )
            packages.append(name)
    return sorted(set(packages))


def parse_runtime(text: str, where: str = "runtime.txt") -> PythonRequest | None:
    """The Python version runtime.txt asks for (`python-X.Y`); other runtimes fail clearly."""
    value = text.strip()
    if not value:
        return None
    match = re.fullmatch(r"python-(\d+(?:\.\d+)?(?:\.\d+)?)", value)
    if not match:
        raise BuildpackError(
            f"{where} says {value!r}: this runtime is not supported yet; minibinder understands "
            "python-X.Y and r-<version>-<YYYY-MM-DD>"
        )
    return parse_request(match.group(1), where)


class BaseBuildPack:
    """Adds what every non-Dockerfile buildpack understands: apt.txt, postBuild, start."""

    name = "base"

    def detect(self, repo: RepoConfig) -> bool:
        return True

    def python_request(self, repo: RepoConfig) -> PythonRequest | None:
        if repo.has("runtime.txt"):
            return parse_runtime(repo.text("runtime.txt"), repo.path("runtime.txt"))
        return None

    def plan(self, repo: RepoConfig, config: Config) -> BuildPlan:
        request = self.python_request(repo)
        available = config.python_versions()
        plan = BuildPlan(buildpack=self.name, python_version=config.default_python)
        plan.python_pinned = request is not None
        if request is None or any(request.allows(parse_version(v)) for v in available):
            plan.python_version = choose_python(
                request, available, config.default_python, config.python_fallback
            ).version
        else:  # no base image has it: a conda channel may, else python_fallback decides
            plan.python_request = request
        plan.base_image = config.base_images[plan.python_version]
        if config.package_index_url:
            plan.env["PIP_INDEX_URL"] = config.package_index_url
            plan.env["UV_INDEX_URL"] = config.package_index_url
        if repo.has("apt.txt"):
            plan.apt_packages = parse_apt_txt(repo.text("apt.txt"))
        if repo.has("postBuild"):
            plan.executables.append(repo.path("postBuild"))
            plan.post_repo_steps.append(f"./{repo.path('postBuild')}")
        if repo.has("start"):
            plan.executables.append(repo.path("start"))
            plan.start_script = f"{REPO_DIR}/{repo.path('start')}"
        return plan


def install_command(args: str, config: Config) -> str:
    """A package install with the configured installer; uv falls back to pip where it differs."""
    # `python` is the notebook environment's: a conda environment's when the image has one
    # (its bin comes first on PATH), else the base image's virtualenv.
    pip = f"python -m pip install --no-cache-dir {args}"
    if config.installer == "pip":
        return pip
    fallback = f"{{ echo 'uv could not install this; trying pip'; {pip}; }}"
    return f"uv pip install --python python {args} || {fallback}"
