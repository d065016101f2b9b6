"""Python environments: requirements.txt, setup.py, pyproject.toml, Pipfile and Pipfile.lock."""

from __future__ import annotations

import json
import posixpath
import re
import shlex
import tomllib

from ...config import Config
from ...errors import BuildpackError
from ..environments.pythons import PythonRequest, parse_request
from .base import BaseBuildPack, BuildPlan, RepoConfig, install_command

DEPS_DIR = "/srv/minibinder/deps"
_LOCAL_REQUIREMENT = re.compile(
    r"^\s*(-e|--editable|-r|--requirement|-c|--constraint|\.|/|~)|file:", re.MULTILINE
)


def refers_to_repository(requirements: str) -> bool:
    """True when requirements.txt names files of the repository, so it must wait for the copy."""
    return bool(_LOCAL_REQUIREMENT.search(requirements))


def pyproject_is_installable(text: str, where: str) -> bool:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise BuildpackError(f"{where} is not valid TOML: {error}") from None
    return "project" in data and "build-system" in data


class PythonBuildPack(BaseBuildPack):
    """requirements.txt, then the repository itself when it is a package (root only)."""

    name = "python"

    def detect(self, repo: RepoConfig) -> bool:
        return repo.has("requirements.txt") or repo.has("setup.py") or repo.has("pyproject.toml")

    def python_request(self, repo: RepoConfig) -> PythonRequest | None:
        if repo.has("runtime.txt") or not repo.has("pyproject.toml"):
            return super().python_request(repo)
        try:
            project = tomllib.loads(repo.text("pyproject.toml")).get("project", {})
        except tomllib.TOMLDecodeError:
            return None  # reported when the plan reads it
        wanted = project.get("requires-python") if isinstance(project, dict) else None
        if not isinstance(wanted, str):
            return None
        return parse_request(wanted, "pyproject.toml requires-python")

    def plan(self, repo: RepoConfig, config: Config) -> BuildPlan:
        plan = super().plan(repo, config)
        if repo.has("requirements.txt"):
            requirements = repo.text("requirements.txt")
            if refers_to_repository(requirements):
                plan.post_repo_steps.insert(
                    0, install_command(f"-r {repo.path('requirements.txt')}", config)
                )
            else:
                plan.dependency_files["requirements.txt"] = repo.files["requirements.txt"]
                plan.pre_repo_steps.append(
                    install_command(f"-r {DEPS_DIR}/requirements.txt", config)
                )
        package = repo.has("setup.py") or (
            repo.has("pyproject.toml")
            and pyproject_is_installable(repo.text("pyproject.toml"), "pyproject.toml")
        )
        if package:
            plan.post_repo_steps.insert(
                1
                if repo.has("requirements.txt")
                and refers_to_repository(repo.text("requirements.txt"))
                else 0,
                install_command(".", config),
            )
        return plan


def _requirement(name: str, entry: object, where: str) -> tuple[str | None, str | None]:
    """One Pipfile / Pipfile.lock entry → (requirement line, or a local path to install)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise BuildpackError(f"{where}: {name!r} is not a package name")
    if isinstance(entry, str):
        return (name if entry.strip() in {"*", ""} else f"{name}{entry.strip()}"), None
    if not isinstance(entry, dict):
        raise BuildpackError(f"{where}: cannot read the entry for {name!r}")
    if "path" in entry:
        return None, str(entry["path"])
    extras = entry.get("extras") or []
    line = name + (f"[{','.join(extras)}]" if extras else "")
    if "git" in entry:
        line = f"{line} @ git+{entry['git']}" + (f"@{entry['ref']}" if entry.get("ref") else "")
    else:
        version = str(entry.get("version", "*")).strip()
        if version not in {"*", ""}:
            line += version
    if entry.get("markers"):
        line += f" ; {entry['markers']}"
    return line, None


class PipfileBuildPack(BaseBuildPack):
    """Pipfile.lock (else the Pipfile): packages and dev-packages, as `pipenv --dev` does."""

    name = "pipfile"

    def detect(self, repo: RepoConfig) -> bool:
        return repo.has("Pipfile.lock") or repo.has("Pipfile")

    def _sections(
        self, repo: RepoConfig, unlocked: bool = False
    ) -> tuple[str, list[dict], str | None]:
        if repo.has("Pipfile.lock") and not unlocked:
            try:
                lock = json.loads(repo.text("Pipfile.lock"))
            except json.JSONDecodeError as error:
                raise BuildpackError(f"Pipfile.lock is not valid JSON: {error}") from None
            requires = lock.get("_meta", {}).get("requires", {})
            return (
                "Pipfile.lock",
                [lock.get("default", {}), lock.get("develop", {})],
                requires.get("python_version"),
            )
        try:
            pipfile = tomllib.loads(repo.text("Pipfile"))
        except tomllib.TOMLDecodeError as error:
            raise BuildpackError(f"Pipfile is not valid TOML: {error}") from None
        requires = pipfile.get("requires", {})
        return (
            "Pipfile",
            [pipfile.get("packages", {}), pipfile.get("dev-packages", {})],
            requires.get("python_version"),
        )

    def python_request(self, repo: RepoConfig) -> PythonRequest | None:
        if repo.has("runtime.txt"):
            return super().python_request(repo)
        where, _, wanted = self._sections(repo)
        if not wanted:
            return None
        return parse_request(".".join(str(wanted).split(".")[:2]), where)

    def plan(self, repo: RepoConfig, config: Config) -> BuildPlan:
        plan = super().plan(repo, config)
        where, sections, _ = self._sections(repo)
        lines, local = [], []
        for section in sections:
            for name, entry in sorted(section.items()):
                line, path = _requirement(name, entry, where)
                if line:
                    lines.append(line)
                if path:
                    editable = isinstance(entry, dict) and entry.get("editable")
                    local.append(("-e " if editable else "") + _inside(repo, path, where))
        if lines:
            plan.dependency_files["requirements.txt"] = ("\n".join(lines) + "\n").encode()
            plan.pre_repo_steps.append(install_command(f"-r {DEPS_DIR}/requirements.txt", config))
        if where == "Pipfile.lock" and repo.has("Pipfile"):
            _, unlocked, _ = self._sections(repo, unlocked=True)
            loose = [
                _requirement(n, e, "Pipfile")[0] for s in unlocked for n, e in sorted(s.items())
            ]
            text = "".join(f"{line}\n" for line in loose if line)
            plan.unlocked = ("Pipfile.lock", "Pipfile", text.encode())
        for index, path in enumerate(local):
            plan.post_repo_steps.insert(index, install_command(path, config))
        return plan


def _inside(repo: RepoConfig, path: str, where: str) -> str:
    """A path written in a Pipfile is relative to the Pipfile's folder; as seen from the
    repository root (where the install runs), quoted for the shell."""
    relative = posixpath.normpath(posixpath.join(repo.config_dir or ".", path))
    if relative == ".." or relative.startswith(("../", "/")):
        raise BuildpackError(f"{repo.path(where)}: the path {path!r} leads out of the repository")
    return shlex.quote(relative if relative.startswith(".") else f"./{relative}")


class UnsupportedBuildPack(BaseBuildPack):
    """Files of environments minibinder cannot build yet: fail clearly, never ignore them."""

    name = "unsupported"
    MESSAGES = {
        "Project.toml": "Project.toml (Julia) is not supported yet",
        "REQUIRE": "REQUIRE (Julia) is not supported yet",
        "default.nix": "default.nix (Nix) is not supported yet",
    }

    def detect(self, repo: RepoConfig) -> bool:
        return any(repo.has(name) for name in self.MESSAGES)

    def plan(self, repo: RepoConfig, config: Config) -> BuildPlan:
        name = next(name for name in self.MESSAGES if repo.has(name))
        raise BuildpackError(f"{repo.path(name)}: {self.MESSAGES[name]}")
