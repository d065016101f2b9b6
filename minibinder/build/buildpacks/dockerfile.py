"""A repository's own Dockerfile, used as is under the Dockerfile policy."""

from __future__ import annotations

import re

from ...config import Config
from ...errors import BuildpackError
from .base import BaseBuildPack, BuildPlan, RepoConfig

_SYNTAX_DIRECTIVE = re.compile(r"^\s*#\s*syntax\s*=", re.IGNORECASE)
_ADD = re.compile(r"^\s*ADD\s+(.*)$", re.IGNORECASE)
_REMOTE = re.compile(r"""^["'\[]*([a-z][a-z0-9+.-]*://|git@)""", re.IGNORECASE)
_RUN_FLAG = re.compile(
    r"^\s*RUN\s+(?:--\w+(?:=\S*)?\s+)*--(mount|network|security)\b", re.IGNORECASE
)


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Dockerfile instructions joined across backslash continuations, with their first line."""
    result, current, start = [], "", 0
    for number, line in enumerate(text.splitlines(), 1):
        if not current:
            start = number
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        result.append((start, current + line))
        current = ""
    if current:
        result.append((start, current))
    return result


def check_dockerfile_policy(text: str, where: str) -> None:
    """Refuse BuildKit frontends, RUN flags that reach past the build sandbox, and ADD <url>."""
    for number, line in logical_lines(text):
        if _SYNTAX_DIRECTIVE.match(line):
            raise BuildpackError(f"{where} line {number}: '# syntax=' frontends are not allowed")
        match = _RUN_FLAG.match(line)
        if match:
            raise BuildpackError(f"{where} line {number}: RUN --{match.group(1)} is not allowed")
        add = _ADD.match(line)
        if add and any(_REMOTE.match(word) for word in re.split(r"[\s,]+", add.group(1))):
            raise BuildpackError(
                f"{where} line {number}: ADD from a URL is not allowed (the Docker daemon would "
                "fetch it from the host's network); download it in a RUN step instead"
            )
    if not any(line.strip().upper().startswith("FROM ") for _, line in logical_lines(text)):
        raise BuildpackError(f"{where} has no FROM instruction")


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
        check_dockerfile_policy(repo.text("Dockerfile"), where)
        return BuildPlan(buildpack=self.name, python_version="", dockerfile=where)
