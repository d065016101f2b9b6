"""Environments: a data-science environment.yml installed from the Python package index (no
conda channel answers here) vs. the same packages as a plain requirements.txt; a conda solve
and install from a local channel vs. installing the same packages from the kept lock (no solve);
and a rebuild of a conda repository after a notebook-only commit.

Usage: python -m bench.environments   (as `make bench-environments`)
"""

from __future__ import annotations

import os
import secrets
import statistics
import time
from pathlib import Path

from minibinder.build.environments import conda
from minibinder.build.images import build_image, target_for_source
from minibinder.config import load_config
from minibinder.docker_client import Docker
from minibinder.repos.providers import parse_spec
from tests.conda_channel import CondaChannel

from .common import IMAGE_PREFIX, NOTEBOOK, Bench

PACKAGES = ["numpy", "pandas", "matplotlib", "bokeh", "dask", "scipy", "ipywidgets", "voila"]


def timed_build(spec: str, config, docker) -> tuple[float, str]:
    started = time.perf_counter()
    events = list(build_image(target_for_source(parse_spec(spec, config), config), config, docker))
    if events[-1].phase != "built":
        raise RuntimeError(events[-1].message)
    return time.perf_counter() - started, "".join(e.message for e in events)


def lock_reuse(folder: Path, rounds: int = 5, packages: int = 60) -> tuple[float, float]:
    """Median seconds of solve + install, and of install from the lock, for one channel."""
    channel = CondaChannel(folder / "channel")
    for index in range(packages):
        depends = [f"pkg{index - 1}"] if index else []
        for version in ("1.0", "1.1", "2.0"):
            channel.add(f"pkg{index}", version, depends=depends)
    solved, locked = [], []
    with channel:
        for round_ in range(rounds):
            cache = folder / f"cache{round_}"
            started = time.perf_counter()
            records = conda.solve([f"pkg{packages - 1}"], [channel.url], cache, 60)
            conda.write_lock(records, cache / "lock.yml", conda.platform_subdir())
            conda.install(records, cache / "solved", cache / "pkgs")
            solved.append(time.perf_counter() - started)
            started = time.perf_counter()
            from_lock = conda.read_lock(cache / "lock.yml")
            assert from_lock is not None
            conda.install(from_lock, cache / "locked", cache / "pkgs")
            locked.append(time.perf_counter() - started)
    return statistics.median(solved), statistics.median(locked)


def main() -> None:
    bench = Bench()
    try:
        salt = f"# bench {secrets.token_hex(4)}"  # new to Docker's cache: installs for real
        env_yml = (
            "channels: [conda-forge]\ndependencies:\n  - python=3.11\n"
            + "".join(f"  - {'matplotlib-base' if p == 'matplotlib' else p}\n" for p in PACKAGES)
            + f"{salt}\n"
        )
        bench.git.create("bench/env-pypi", {"environment.yml": env_yml, "a.ipynb": NOTEBOOK})
        bench.git.create(
            "bench/env-reqs", {"requirements.txt": salt + "\n" + "\n".join(PACKAGES) + "\n"}
        )
        config = load_config(overrides={
            "data_dir": str(bench.folder / "data"), "image_prefix": IMAGE_PREFIX,
            "allowed_clone_schemes": ["https", "git"], "github_url": bench.git.base_url,
            "extra_ca_file": os.environ.get("MINIBINDER_EXTRA_CA_FILE", ""),
            "internal_hosts": ["127.0.0.1"],
        })  # fmt: skip
        docker = Docker.connect()
        reqs, _ = timed_build("gh/bench/env-reqs/HEAD", config, docker)
        pypi, log = timed_build("gh/bench/env-pypi/HEAD", config, docker)
        assert "conda_fallback" in log, "expected the package index path"
        solve, lock = lock_reuse(bench.folder / "lock")
        with CondaChannel(bench.folder / "tools").add("tinytool", "1.0") as channel:
            repo = bench.git.create("bench/env-conda", {
                "environment.yml": f"channels: [{channel.url}]\ndependencies: [tinytool]\n",
                "a.ipynb": NOTEBOOK})  # fmt: skip
            timed_build("gh/bench/env-conda/HEAD", config, docker)
            repo.commit({"b.ipynb": NOTEBOOK}, "a notebook-only commit")
            rebuild, rebuild_log = timed_build("gh/bench/env-conda/HEAD", config, docker)
        print(f"packages: {', '.join(PACKAGES)}")
        print(f"requirements.txt build                 : {reqs:6.1f} s")
        print(f"environment.yml build, PyPI path        : {pypi:6.1f} s  "
              f"ratio {pypi / reqs:.2f}x (target <= 1.2x)")  # fmt: skip
        print(f"local channel: solve + install (60 pkgs): {solve * 1000:6.0f} ms")
        print(f"local channel: install from the lock    : {lock * 1000:6.0f} ms  "
              f"ratio {solve / lock:.2f}x")  # fmt: skip
        reused = "image reused" in rebuild_log
        print(f"conda repository, notebook-only rebuild : {rebuild:6.1f} s  "
              f"(environment image reused: {reused}; target <= 15 s)")  # fmt: skip
    finally:
        bench.close()


if __name__ == "__main__":
    main()
