"""conda environment files: environment.yml or environment.yaml, with repo2docker's rules (the
file's Python pin wins over runtime.txt; requirements.txt counts only through its `pip:`)."""

from __future__ import annotations

from ...config import Config
from ...errors import BuildpackError
from ..environments.envfile import (
    CondaEnvironment,
    RepositoryLock,
    is_explicit,
    parse_environment_file,
)
from ..environments.pythons import PythonRequest
from .base import BaseBuildPack, BuildPlan, RepoConfig

ENVIRONMENT_FILES = ("environment.yml", "environment.yaml")
LOCK_FILES = {"conda-lock.yml": "conda-lock", "conda-linux-64.lock": "explicit"}


def environment_file(repo: RepoConfig) -> str | None:
    found = [name for name in ENVIRONMENT_FILES if repo.has(name)]
    if len(found) > 1:
        raise BuildpackError(
            f"{repo.path(found[0])} and {repo.path(found[1])} both exist; keep only one"
        )
    return found[0] if found else None


class CondaBuildPack(BaseBuildPack):
    name = "conda"

    def detect(self, repo: RepoConfig) -> bool:
        return environment_file(repo) is not None or any(map(repo.has, LOCK_FILES))

    def python_request(self, repo: RepoConfig) -> PythonRequest | None:
        # The environment's own Python, if it names one, is solved with it (runtime.txt is
        # ignored, as repo2docker does); without a conda channel it picks the base image.
        return None

    def plan(self, repo: RepoConfig, config: Config) -> BuildPlan:
        plan = super().plan(repo, config)
        name = environment_file(repo)
        lock = next((lock for lock in LOCK_FILES if repo.has(lock)), None)
        if name and is_explicit(repo.text(name)):
            plan.conda_lock = RepositoryLock(repo.path(name), "explicit", repo.text(name))
            name = None
        elif lock:  # installed without solving; the environment file's pip: still counts
            plan.conda_lock = RepositoryLock(repo.path(lock), LOCK_FILES[lock], repo.text(lock))
        where = repo.path(name) if name else plan.conda_lock.where if plan.conda_lock else ""
        plan.conda = (
            parse_environment_file(repo.text(name), where)
            if name
            else CondaEnvironment(where, (), ())
        )
        plan.conda.python_request()  # a malformed pin fails here, before anything is solved
        return plan
