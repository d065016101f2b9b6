"""A session that computes past `cpu_budget` is stopped by the running service: its cgroup's CPU
time read, the decision taken, the container removed, the stop counted, the route closed."""

from __future__ import annotations

import time
import urllib.request

from ..support.jupyter import api, execute, start_kernel
from .conftest import launch, wait_for

BUDGET = 20  # CPU-seconds: above what Jupyter's start takes, below the loop's minute
SPIN = "import time\nend = time.time() + 60\nwhile time.time() < end: pass"


def test_a_session_past_its_cpu_budget_is_stopped(serve_with, git_server):
    git_server.create("hostile/spin", {"README.md": "x"})
    # The other limits far away: only the CPU budget can stop it within the test.
    serve = serve_with(cpu_budget=BUDGET, cull_interval=1, idle_timeout=3600, max_age=3600)
    ready = launch(serve, "gh/hostile/spin/HEAD")
    kernel = start_kernel(ready)
    time.sleep(3)  # a few culler rounds: Jupyter's own start is within the budget
    assert api(ready, "api/status")[0] == 200, "stopped before it computed anything"
    started = time.monotonic()
    execute(ready, kernel, SPIN, wait=False)
    wait_for(
        lambda: api(ready, "api/status")[0] != 200,
        90,
        message="the session past its CPU budget to stop",
    )
    elapsed = time.monotonic() - started
    # One CPU (session_cpu_limit) spends the budget in at most BUDGET seconds, plus a round.
    assert elapsed < BUDGET + 15, f"stopped {elapsed:.0f} s after the loop started"
    wait_for(lambda: 'reason="cpu"' in metrics(serve), 30, message="the CPU stop counted")


def metrics(serve) -> str:
    with urllib.request.urlopen(f"{serve.url}/metrics", timeout=10) as response:
        return response.read().decode()
