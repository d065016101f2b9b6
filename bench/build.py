"""Builds: the first build of a requirements.txt repository, a rebuild after a notebook-only
commit, and a second repository with the same requirements (its environment layer is reused).

Usage: python -m bench.build [--requirements "pandas==2.2.3"]
"""

from __future__ import annotations

import argparse
import secrets
import time

from minibinder.builds.images import build_image, target_for_source
from minibinder.docker_client import Docker
from minibinder.repos.providers import parse_spec
from minibinder.settings_load import load_config

from .common import IMAGE_PREFIX, NOTEBOOK, Bench


def timed_build(spec: str, config, docker) -> tuple[float, str]:
    started = time.perf_counter()
    target = target_for_source(parse_spec(spec, config), config)
    events = list(build_image(target, config, docker))
    if events[-1].phase != "built":
        raise RuntimeError(events[-1].message)
    return time.perf_counter() - started, "".join(e.message for e in events)


def install_step_cached(log: str) -> bool:
    step = log.split("RUN uv pip install --python python -r", 1)[1].split("Step ", 1)[0]
    return "Using cache" in step and "Running in" not in step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requirements", default="pandas==2.2.3")
    args = parser.parse_args()
    bench = Bench()
    try:
        # A fresh comment makes the requirements new to Docker's cache: a true first build.
        requirements = f"# bench {secrets.token_hex(4)}\n{args.requirements}\n"
        repo = bench.git.create(
            "bench/first", {"requirements.txt": requirements, "index.ipynb": NOTEBOOK}
        )
        bench.git.create("bench/twin", {"requirements.txt": requirements, "other.ipynb": NOTEBOOK})
        import os

        config = load_config(
            overrides={
                "data_dir": str(bench.folder / "data"),
                "image_prefix": IMAGE_PREFIX,
                "allowed_clone_schemes": ["https", "git"],
                "internal_hosts": ["127.0.0.1"],
                "github_url": bench.git.base_url,
                "extra_ca_file": os.environ.get("MINIBINDER_EXTRA_CA_FILE", ""),
            }
        )
        docker = Docker.connect()
        first, _ = timed_build("gh/bench/first/HEAD", config, docker)
        repo.commit({"second.ipynb": NOTEBOOK}, "a notebook-only commit")
        notebook_only, log = timed_build("gh/bench/first/HEAD", config, docker)
        twin, twin_log = timed_build("gh/bench/twin/HEAD", config, docker)
        print(f"requirements: {args.requirements}")
        print(f"first build                      : {first:6.1f} s")
        print(
            f"rebuild after notebook-only commit: {notebook_only:6.1f} s "
            f"(install step cached: {install_step_cached(log)}; target <= 15 s)"
        )
        print(
            f"second repository, same reqs     : {twin:6.1f} s "
            f"(install step cached: {install_step_cached(twin_log)})"
        )
        print(
            f"ratios: notebook-only / first = {notebook_only / first:.2f}, "
            f"second repo / first = {twin / first:.2f}"
        )
    finally:
        bench.close()


if __name__ == "__main__":
    main()
