"""What every benchmark needs: a loopback git server with a fixture repository, a running
`minibinder serve`, timing helpers. Run benchmarks from the repository root."""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.support.gitserver import GitServer
from tests.support.serving import ServeProcess, remove_test_sessions, write_config
from tests.support.sse import browser_events, events

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
IMAGE_PREFIX = "minibinder-bench-"


class Bench:
    """A scratch folder, a git server and helpers; clean up with `close()`."""

    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="minibinder-bench-"))
        self.git = GitServer(self.folder / "git").start()
        self.serves: list[ServeProcess] = []

    def serve(self, docker_host: str = "", **settings) -> ServeProcess:
        """`minibinder serve` with `settings`; `docker_host`: another engine than the host's."""
        name = f"serve{len(self.serves)}"
        (self.folder / name).mkdir()
        config = write_config(
            self.folder / name / "minibinder.toml",
            self.folder / name / "data",
            image_prefix=IMAGE_PREFIX,
            allowed_clone_schemes=["https", "git"],
            internal_hosts=["127.0.0.1"],
            github_url=self.git.base_url,
            extra_ca_file=os.environ.get("MINIBINDER_EXTRA_CA_FILE", ""),
            **settings,
        )
        serve = ServeProcess(
            config, self.folder / name / "serve.log", docker_host=docker_host
        ).start()
        serve.data_dir = self.folder / name / "data"
        self.serves.append(serve)
        return serve

    def close(self) -> None:
        for serve in self.serves:
            serve.stop()
        self.git.stop()
        self.close_sessions()

    def close_sessions(self) -> None:
        remove_test_sessions(IMAGE_PREFIX)


def launch(serve: ServeProcess, spec: str, as_browser: bool = False) -> tuple[float, dict]:
    """One launch, timed; `as_browser`: the launch page first, then the stream with the cookie
    it gave (forty students behind one address are forty browsers)."""
    started = time.perf_counter()
    received = (
        browser_events(serve.url, spec) if as_browser else events(f"{serve.url}/build/{spec}")
    )
    elapsed = time.perf_counter() - started
    if received[-1]["phase"] != "ready":
        raise RuntimeError(received[-1].get("message"))
    return elapsed, received[-1]


def wait_http(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{url} did not answer")


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return (
        f"median {statistics.median(ordered):.3f} s, p95 {p95:.3f} s, "
        f"min {ordered[0]:.3f} s (n={len(ordered)})"
    )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def warm_count(serve: ServeProcess) -> int:
    """Sessions of this server waiting in its warm pool."""
    import sqlite3

    with sqlite3.connect(serve.data_dir / "minibinder.sqlite") as db:
        return db.execute("SELECT count(*) FROM sessions WHERE state = 'warm'").fetchone()[0]


def wait_for_pool(serve: ServeProcess, size: int, timeout: float = 600) -> float:
    started = time.monotonic()
    while warm_count(serve) < size:
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"the warm pool did not reach {size} in {timeout} s")
        time.sleep(1)
    return time.monotonic() - started


def rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


def pss_mib(pids: list[int]) -> float:
    """Proportional set size: pages shared between the master and its forked workers counted
    once in all, where RSS counts them in each process."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
    return total / 1024
