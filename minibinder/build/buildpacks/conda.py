"""conda environment files: environment.yml or environment.yaml, with repo2docker's rules (the
file's Python pin wins over runtime.txt; requirements.txt counts only through its `pip:`)."""

from __future__ import annotations

import shlex

from ...config import Config
from ...errors import BuildpackError
from ..environments.envfile import parse_environment_file
from ..environments.pythons import PythonRequest, parse_request
from .base import BaseBuildPack, BuildPlan, RepoConfig

ENVIRONMENT_FILES = ("environment.yml", "environment.yaml")


def environment_file(repo: RepoConfig) -> str | None:
    found = [name for name in ENVIRONMENT_FILES if repo.has(name)]
    if len(found) > 1:
        raise BuildpackError(
            f"{repo.path(found[0])} and {repo.path(found[1])} both exist; keep only one"
        )
    return found[0] if found else None


def refers_to_repository(line: str) -> bool:
    """A pip line naming files of the repository (`-r requirements.txt`, `-e .`, `./pkg`)."""
    words = shlex.split(line) if line.strip() else []
    first = words[0] if words else ""
    return first in ("-r", "--requirement", "-e", "--editable", "-c", "--constraint") or (
        first.startswith((".", "/", "file:"))
    )


class CondaBuildPack(BaseBuildPack):
    name = "conda"

    def detect(self, repo: RepoConfig) -> bool:
        return environment_file(repo) is not None

    def python_request(self, repo: RepoConfig) -> PythonRequest | None:
        # The environment's own Python, if it names one, is solved with it (runtime.txt is
        # ignored, as repo2docker does); without a conda channel it picks the base image.
        return None

    def plan(self, repo: RepoConfig, config: Config) -> BuildPlan:
        plan = super().plan(repo, config)
        name = environment_file(repo)
        assert name is not None
        where = repo.path(name)
        plan.conda = parse_environment_file(repo.text(name), where)
        pin = plan.conda.python_spec
        if pin is not None:
            # Validated here, so a malformed pin fails before anything is solved.
            parse_request(pin.constraint.lstrip("= ") or "", where, conda=True)
        return plan


def pip_arguments(line: str, where: str) -> str:
    """One local pip line as shell-quoted arguments."""
    try:
        return " ".join(shlex.quote(word) for word in shlex.split(line))
    except ValueError as error:
        raise BuildpackError(f"{where}: cannot read the pip line {line!r}: {error}") from None
