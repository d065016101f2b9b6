"""Pick the buildpack for a repository, in repo2docker's order of precedence."""

from __future__ import annotations

from ...config import Config
from .base import BaseBuildPack, BuildPlan, RepoConfig
from .conda import CondaBuildPack
from .dockerfile import DockerfileBuildPack
from .python import PipfileBuildPack, PythonBuildPack, UnsupportedBuildPack
from .r import RBuildPack

# First match wins: a Dockerfile beats everything, then Julia/Nix (not supported yet: they fail
# naming the file), then R, then conda, which beats Pipfile, which beats requirements.txt. With
# no configuration at all, plain Python with JupyterLab.
ORDER: tuple[BaseBuildPack, ...] = (
    DockerfileBuildPack(),
    UnsupportedBuildPack(),
    RBuildPack(),
    CondaBuildPack(),
    PipfileBuildPack(),
    PythonBuildPack(),
)
DEFAULT = PythonBuildPack()


def pick_buildpack(repo: RepoConfig) -> BaseBuildPack:
    return next((pack for pack in ORDER if pack.detect(repo)), DEFAULT)


def plan_build(repo: RepoConfig, config: Config) -> BuildPlan:
    return pick_buildpack(repo).plan(repo, config)
