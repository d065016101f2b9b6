"""A repository's own Dockerfile, used as is under the Dockerfile policy."""

from __future__ import annotations

from ...config import Config
from ...errors import BuildpackError
from .base import BaseBuildPack, BuildPlan, RepoConfig
from .dockerfile_policy import check_dockerfile_policy

__all__ = ["DockerfileBuildPack", "check_dockerfile_policy"]


class DockerfileBuildPack(BaseBuildPack):
    name = "dockerfile"

    def detect(self, repo: RepoConfig) -> bool:
        return repo.has("Dockerfile")

    def plan(self, repo: RepoConfig, config: Config) -> BuildPlan:
        where = repo.path("Dockerfile")
        if not config.allow_dockerfile:
            raise BuildpackError(
                f"{where}: this server does not build repositories with their "
                "own Dockerfile (allow_dockerfile = false)"
            )
        # minibinder passes no build arguments to a repository's Dockerfile.
        check_dockerfile_policy(repo.text("Dockerfile"), where, config.allowed_registries)
        return BuildPlan(buildpack=self.name, python_version="", dockerfile=where)
