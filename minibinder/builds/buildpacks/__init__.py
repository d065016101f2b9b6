"""Repository configuration files → a build plan → Dockerfile text (pure, no I/O)."""

from .base import BuildPlan, RepoConfig, read_repo_config
from .detect import pick_buildpack, plan_build
from .render import render_dockerfile

__all__ = [
    "BuildPlan",
    "RepoConfig",
    "pick_buildpack",
    "plan_build",
    "read_repo_config",
    "render_dockerfile",
]
