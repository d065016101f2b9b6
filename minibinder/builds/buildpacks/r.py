"""R beside Python: runtime.txt `r-…`, install.R or DESCRIPTION, with repo2docker's rules.

Everything the Python buildpack reads still counts (the Jupyter server and its Python stay); R,
its kernel and the repository's R packages are added. The packages are installed before the
repository is copied, so a commit that changes only notebooks reinstalls none of them; a
DESCRIPTION's own package is installed after the copy, as repo2docker does.
"""

from __future__ import annotations

from ...config import Config
from ..environments.pythons import PythonRequest
from ..environments.r_packages import RPackages, joined, parse_install_r
from ..environments.r_runtime import (
    R_LIBRARY,
    RUNNER,
    RUNNER_SCRIPT,
    RRequest,
    install_script,
    parse_description,
    parse_r_runtime,
)
from .base import BuildPlan, RepoConfig
from .conda import environment_file
from .python import DEPS_DIR, PythonBuildPack

DESCRIPTION_DEPS = "description-deps.R"


def _runtime_is_r(repo: RepoConfig) -> bool:
    return repo.has("runtime.txt") and repo.text("runtime.txt").strip().startswith("r-")


class RBuildPack(PythonBuildPack):
    name = "r"

    def detect(self, repo: RepoConfig) -> bool:
        # DESCRIPTION counts only at the root with no binder folder (read_repo_config drops it).
        return _runtime_is_r(repo) or repo.has("install.R") or repo.has("DESCRIPTION")

    def python_request(self, repo: RepoConfig) -> PythonRequest | None:
        if _runtime_is_r(repo):  # runtime.txt names R; Python is the default (or pyproject's)
            without = RepoConfig(
                repo.config_dir,
                {name: content for name, content in repo.files.items() if name != "runtime.txt"},
            )
            return super().python_request(without)
        return super().python_request(repo)

    def plan(self, repo: RepoConfig, config: Config) -> BuildPlan:
        plan = super().plan(repo, config)
        plan.buildpack = self.name
        if _runtime_is_r(repo):
            plan.r = parse_r_runtime(repo.text("runtime.txt"), repo.path("runtime.txt"))
        else:
            source = "install.R" if repo.has("install.R") else "DESCRIPTION"
            plan.r = RRequest(repo.path(source), "")
        plan.env["R_LIBS_USER"] = R_LIBRARY
        runner = f"Rscript {DEPS_DIR}/{RUNNER}"
        steps = []
        if repo.has("install.R"):
            plan.dependency_files["install.R"] = repo.files["install.R"]
            steps.append(f"{runner} {DEPS_DIR}/install.R")
            plan.r_packages = parse_install_r(repo.text("install.R"), repo.path("install.R"))
        if repo.has("DESCRIPTION"):
            _, needed = parse_description(repo.text("DESCRIPTION"), repo.path("DESCRIPTION"))
            if needed:
                asked = RPackages((repo.path("DESCRIPTION"),), tuple(needed))
                plan.r_packages = joined(plan.r_packages, asked)
                plan.dependency_files[DESCRIPTION_DEPS] = install_script(needed).encode()
                steps.append(f"{runner} {DEPS_DIR}/{DESCRIPTION_DEPS}")
            plan.post_repo_steps.insert(0, "R CMD INSTALL .")  # the package itself
        if steps:
            plan.dependency_files[RUNNER] = RUNNER_SCRIPT.encode()
            plan.pre_repo_steps += steps
        name = environment_file(repo)
        if name:
            plan.notices.append(
                f"{repo.path(name)} is not used: {plan.r.source} makes this an R environment "
                "(as repo2docker does); install R packages with install.R"
            )
        return plan
