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

from minibinder.builds.environments import conda
from minibinder.builds.images import build_image, target_for_source
from minibinder.docker_client import Docker
from minibinder.repos.providers import parse_spec
from minibinder.settings_load import load_config
from tests.support.conda_channel import CondaChannel

from .common import IMAGE_PREFIX, NOTEBOOK, Bench

PACKAGES = ["numpy", "pandas", "matplotlib", "bokeh", "dask", "scipy", "ipywidgets", "voila"]


def timed_build(spec: str, config, docker, fresh: bool = False) -> tuple[float, str]:
    """Seconds for one build of `spec`; `fresh` builds every step again (no layer cache)."""
    started = time.perf_counter()
    target = target_for_source(parse_spec(spec, config), config)
    events = list(build_image(target, config, docker, no_cache=fresh))
    if events[-1].phase != "built":
        raise RuntimeError(events[-1].message)
    return time.perf_counter() - started, "".join(e.message for e in events)


def lock_reuse(folder: Path, rounds: int = 5, packages: int = 60) -> tuple[float, float]:
    """Median seconds of solve + install, and of install from the kept lock, for one channel.

    Both install from the same, already filled package cache (a warm-up round fills it), so the
    difference is what the lock saves: fetching repodata and solving.
    """
    channel = CondaChannel(folder / "channel")
    for index in range(packages):
        depends = [f"pkg{index - 1}"] if index else []
        for version in ("1.0", "1.1", "2.0"):
            channel.add(f"pkg{index}", version, depends=depends)
    spec, pkgs, lock = [f"pkg{packages - 1}"], folder / "pkgs", folder / "lock.yml"
    solved, locked = [], []
    with channel:
        records = conda.solve(spec, [channel.url], folder / "warm", 60)
        conda.write_lock(records, lock, conda.platform_subdir())
        conda.install(records, folder / "warm-prefix", pkgs)
        for round_ in range(rounds):
            started = time.perf_counter()
            records = conda.solve(spec, [channel.url], folder / f"repodata{round_}", 60)
            conda.install(records, folder / f"solved{round_}", pkgs)
            solved.append(time.perf_counter() - started)
            started = time.perf_counter()
            from_lock = conda.read_lock(lock)
            assert from_lock is not None
            conda.install(from_lock, folder / f"locked{round_}", pkgs)
            locked.append(time.perf_counter() - started)
    return statistics.median(solved), statistics.median(locked)


def main() -> None:
    bench = Bench()
    try:
        salt = f"# bench {secrets.token_hex(4)}"  # a new commit each run; builds are fresh
        env_yml = (
            "channels: [conda-forge]\ndependencies:\n  - python=3.11\n"
            + "".join(f"  - {'matplotlib-base' if p == 'matplotlib' else p}\n" for p in PACKAGES)
            + f"{salt}\n"
        )
        bench.git.create("bench/env-pypi", {"environment.yml": env_yml, "a.ipynb": NOTEBOOK})
        bench.git.create(
            "bench/env-reqs", {"requirements.txt": salt + "\n" + "\n".join(PACKAGES) + "\n"}
        )
        config = load_config(
            overrides={
                "data_dir": str(bench.folder / "data"),
                "image_prefix": IMAGE_PREFIX,
                "allowed_clone_schemes": ["https", "git"],
                "github_url": bench.git.base_url,
                "extra_ca_file": os.environ.get("MINIBINDER_EXTRA_CA_FILE", ""),
                "internal_hosts": ["127.0.0.1"],
            }
        )
        docker = Docker.connect()
        # Interleaved, three of each, medians: downloads through a proxy are noisy.
        reqs_times, pypi_times = [], []
        for round_ in range(3):
            pair = [("reqs", "gh/bench/env-reqs/HEAD"), ("pypi", "gh/bench/env-pypi/HEAD")]
            for name, spec in pair if round_ % 2 == 0 else pair[::-1]:
                seconds, log = timed_build(spec, config, docker, fresh=True)
                (reqs_times if name == "reqs" else pypi_times).append(seconds)
                if name == "pypi":
                    assert "conda_fallback" in log, "expected the package index path"
        reqs, pypi = statistics.median(reqs_times), statistics.median(pypi_times)
        solve, lock = lock_reuse(bench.folder / "lock")
        with CondaChannel(bench.folder / "tools").add("tinytool", "1.0") as channel:
            repo = bench.git.create(
                "bench/env-conda",
                {
                    "environment.yml": f"channels: [{channel.url}]\ndependencies: [tinytool]\n",
                    "a.ipynb": NOTEBOOK,
                },
            )
            timed_build("gh/bench/env-conda/HEAD", config, docker)
            repo.commit({"b.ipynb": NOTEBOOK}, "a notebook-only commit")
            rebuild, rebuild_log = timed_build("gh/bench/env-conda/HEAD", config, docker)
        print(f"packages: {', '.join(PACKAGES)}")
        print(f"requirements.txt build (median of 3)   : {reqs:6.1f} s")
        print(
            f"environment.yml, PyPI path (median of 3): {pypi:6.1f} s  "
            f"ratio {pypi / reqs:.2f}x (target <= 1.2x)"
        )
        print(f"local channel: solve + install (60 pkgs): {solve * 1000:6.0f} ms")
        print(
            f"local channel: install from the lock    : {lock * 1000:6.0f} ms  "
            f"ratio {solve / lock:.2f}x"
        )
        reused = "image reused" in rebuild_log
        print(
            f"conda repository, notebook-only rebuild : {rebuild:6.1f} s  "
            f"(environment image reused: {reused}; target <= 15 s)"
        )
    finally:
        bench.close()


if __name__ == "__main__":
    main()
