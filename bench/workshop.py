"""The workshop at 9:00: 40 students click the same link at once, on this 2-core machine, all
behind one address (as a classroom behind NAT): each a browser that opens the launch page.

Measured twice: with a warm pool of 40 and without one. Prints time until all are ready,
p50/p95 per student, errors, and minibinder's own memory with 40 sessions.
Usage: python -m bench.workshop [--students 40]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

from tests.support.sse import events

from .common import NOTEBOOK, Bench, launch, percentile, pss_mib, rss_mib, wait_for_pool

# 40 sessions must fit: less memory each than the defaults (1 GiB reserved, 2 GiB limit).
SMALL = {
    "session_memory_reservation": "256M",
    "session_memory_limit": "512M",
    "idle_timeout": 3600,
    "launch_timeout": 600,
    "threads": 256,
}


def prebuild(serve, spec: str) -> None:
    """Build the image ahead, as the instructor does (`minibinder prebuild`): no session is
    left running, so all 40 seats behind the room's address are the students'."""
    last = events(f"{serve.url}/build/{spec}?build_only=true")[-1]
    if last["phase"] != "ready":
        raise RuntimeError(f"the prebuild failed: {last.get('message')}")


def stampede(serve, spec: str, students: int) -> dict:
    def one(_):
        try:
            return launch(serve, spec, as_browser=True)[0], None
        except Exception as error:  # counted, not raised: errors are a result here
            return None, repr(error)

    started = time.perf_counter()
    with ThreadPoolExecutor(students) as executor:
        results = list(executor.map(one, range(students)))
    total = time.perf_counter() - started
    times = [t for t, error in results if t is not None]
    errors = [error for _, error in results if error]
    return {
        "all_ready": total,
        "p50": percentile(times, 0.5) if times else None,
        "p95": percentile(times, 0.95) if times else None,
        "errors": errors,
        "ready": len(times),
    }


def processes_rss(serve) -> dict[str, float]:
    """RSS of the master and of each worker (the front, the app and the job runner), in MiB,
    and the PSS of them all (shared pages counted once)."""
    pids = [serve.process.pid, *serve.worker_pids()]
    rss = {"master": rss_mib(pids[:1])}
    for number, pid in enumerate(pids[1:], 1):
        rss[f"worker {number}"] = rss_mib([pid])
    rss["PSS of all"] = pss_mib(pids)
    return rss


def rss_line(rss: dict[str, float]) -> str:
    return ", ".join(f"{name} {mib:.0f}" for name, mib in rss.items())


def rss_sum(rss: dict[str, float]) -> float:
    return sum(mib for name, mib in rss.items() if not name.startswith("PSS"))


def report(name: str, result: dict) -> None:
    p50 = f"{result['p50']:.2f} s" if result["p50"] is not None else "-"
    p95 = f"{result['p95']:.2f} s" if result["p95"] is not None else "-"
    print(
        f"{name:<22}: ready {result['ready']}, all ready after {result['all_ready']:.1f} s, "
        f"p50 {p50}, p95 {p95}, errors {len(result['errors'])}"
    )
    for error in result["errors"][:3]:
        print(f"    {error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--students", type=int, default=40)
    args = parser.parse_args()
    bench = Bench()
    try:
        bench.git.create("bench/workshop", {"index.ipynb": NOTEBOOK})
        spec = "gh/bench/workshop/HEAD"
        cold_serve = bench.serve(**SMALL)
        idle = processes_rss(cold_serve)
        prebuild(cold_serve, spec)  # not measured
        cold = stampede(cold_serve, spec, args.students)
        report("without a pool", cold)
        cold_serve.stop()
        bench.close_sessions()
        pooled_serve = bench.serve(warm_pool={spec: args.students}, **SMALL)
        fill = wait_for_pool(pooled_serve, args.students)
        print(f"warm pool of {args.students} filled in {fill:.0f} s")
        pooled = stampede(pooled_serve, spec, args.students)
        report("with a warm pool", pooled)
        held = processes_rss(pooled_serve)
        print(
            f"minibinder with {args.students} sessions (+ pool refills): PSS "
            f"{held['PSS of all']:.0f} MiB (target <= 150 MB), sum of RSS {rss_sum(held):.0f} "
            f"MiB (shared pages counted in each process); {rss_line(held)}"
        )
        print(f"minibinder RSS just started, no session: {rss_sum(idle):.0f} MiB; {rss_line(idle)}")
    finally:
        bench.close()


if __name__ == "__main__":
    main()
