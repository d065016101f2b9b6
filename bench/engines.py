"""Engines other than rootful Docker (#20), in one run, each ratio beside its target:

1. launch of a cached image, click to ready (/build → ready, the image already built on that
   engine), on rootless Docker vs rootful Docker on the same host (target <= 1.2x);
2. requests/s through minibinder's proxy to a session reached at a port published on 127.0.0.1
   vs one reached at its bridge address, both on rootful Docker (the path is all that differs;
   target >= 0.9x), with rootless Docker's published path beside them; wrk on Jupyter's
   /api/status, c=1 and c=10, through minibinder and straight at the session's endpoint (what
   the engine's own path costs: docker-proxy, rootlesskit), in interleaved rounds;
3. the culler's round at 40 sessions on the stats-API path (where cgroup files are not visible:
   forced here by hiding them), in this process: CPU-seconds and wall time per round, with the
   sessions asked at once (the culler) vs one after another (before, one round; target <= 1
   CPU-second).

Usage: python -m bench.engines [--runs N] [--sessions N]   (as root: starts rootless Docker)
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from unittest import mock

import docker

from minibinder.docker_client import Docker
from minibinder.settings_load import load_config
from minibinder.store import Store
from tests.support.engines import ensure
from tests.support.session_backends import SessionBackend

from .common import NOTEBOOK, Bench, launch, summary
from .proxy import cpu_seconds, ensure_wrk, wrk

SPEC = "gh/bench/engines/HEAD"
# name -> per round (minibinder CPU-seconds, dockerd CPU-seconds, wall seconds)
Rounds = dict[str, list[tuple[float, float, float]]]


def median(values: list[float]) -> float:
    return statistics.median(values)


def cached_launches(bench: Bench, rootless_host: str, runs: int) -> dict[str, list[float]]:
    """Click-to-ready of an image built beforehand, interleaved on both engines."""
    serves = {
        "rootful": bench.serve(idle_timeout=3600, cull_interval=3600),
        "rootless": bench.serve(rootless_host, idle_timeout=3600, cull_interval=3600),
    }
    for serve in serves.values():
        launch(serve, SPEC)  # builds the image on that engine: not measured
    times: dict[str, list[float]] = {name: [] for name in serves}
    for _ in range(runs):
        for name, serve in serves.items():
            times[name].append(launch(serve, SPEC)[0])
    return times


def proxy_rates(
    bench: Bench, rootless_host: str, seconds: int, rounds: int
) -> dict[str, tuple[float, float]]:
    """(req/s at c=1, at c=10) through minibinder to one session, per way of reaching it, and
    straight at the session's endpoint ("without minibinder": what the engine's own path
    costs). Every way is up at once and measured in interleaved rounds (medians), so the
    machine's drift falls on all of them alike."""
    ways = {
        "rootful, bridge address": ("", "network"),
        "rootful, published port": ("", "published"),
        "rootless, published port": (rootless_host, "published"),
    }
    urls = {}
    for name, (host, reach) in ways.items():
        serve = bench.serve(host, idle_timeout=3600, cull_interval=3600, session_reach=reach)
        ready = launch(serve, SPEC)[1]
        record = Store(serve.data_dir / "minibinder.sqlite").get_session(
            ready["url"].rstrip("/").rsplit("/", 1)[1]
        )
        assert record is not None
        query = f"api/status?token={ready['token']}"
        urls[name] = f"{ready['url']}{query}"
        urls[f"  {name}, without minibinder"] = f"http://{record.target}{record.prefix}{query}"
    for url in urls.values():
        wrk(url, 1, 1)  # connections made, Jupyter warm
    measured: dict[str, list[tuple[float, float]]] = {name: [] for name in urls}
    for _ in range(rounds):
        for name, url in urls.items():
            measured[name].append((wrk(url, 1, seconds)[0], wrk(url, 10, seconds)[0]))
    return {
        name: (median([one for one, _ in values]), median([ten for _, ten in values]))
        for name, values in measured.items()
    }


def culler_rounds(bench: Bench, sessions: int, rounds: int) -> Rounds:
    """(CPU-seconds, the daemon's CPU-seconds, wall seconds) of culler rounds over `sessions`
    test backends, with Docker's stats API standing in for cgroup files: the culler's own
    (concurrent) round, and the same stats asked one session after another."""
    from minibinder.sessions.launcher import Sessions

    data = bench.folder / "culler"
    config = load_config(overrides={"data_dir": str(data), "idle_timeout": 86400})
    data.mkdir(parents=True, exist_ok=True)
    store = Store(config.data_path / "minibinder.sqlite")
    backends = [SessionBackend(data, f"{index:016x}", f"c{index}") for index in range(sessions)]
    try:
        for backend in backends:
            backend.add_route(store, last_activity=time.time())
        engine = Docker(docker.from_env())
        culler = Sessions(config, engine, store, lambda session_id: None)
        found: Rounds = {"concurrent": [], "one by one": []}
        with mock.patch("minibinder.docker_client.cgroup_usage", return_value=None):
            for _ in range(rounds):
                found["concurrent"].append(_timed(culler.cull))
            # Once: forty seconds and more.
            found["one by one"].append(
                _timed(lambda: [culler.usage(record) for record in store.sessions("running")])
            )
        assert len(store.sessions("running")) == sessions, "the culler stopped a session"
        return found
    finally:
        for backend in backends:
            backend.remove()


def _timed(work) -> tuple[float, float, float]:
    """(this process's CPU-seconds, the root dockerd's, wall seconds) of `work()`."""
    daemon = int(
        subprocess.run(
            ["pgrep", "-o", "-u", "0", "-x", "dockerd"], capture_output=True, text=True, check=True
        ).stdout
    )
    cpu, engine, wall = time.process_time(), cpu_seconds(daemon), time.perf_counter()
    work()
    return (time.process_time() - cpu, cpu_seconds(daemon) - engine, time.perf_counter() - wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="cached launches per engine")
    parser.add_argument("--sessions", type=int, default=40, help="sessions in a culler round")
    parser.add_argument("--rounds", type=int, default=3, help="culler rounds measured")
    parser.add_argument("--seconds", type=int, default=4, help="seconds per wrk line")
    parser.add_argument("--proxy-rounds", type=int, default=3, help="interleaved wrk rounds")
    args = parser.parse_args()
    ensure_wrk()
    bench = Bench()
    base = load_config().base_images[load_config().default_python]
    rootless = ensure("docker-rootless", (base,))
    try:
        bench.git.create("bench/engines", {"index.ipynb": NOTEBOOK})
        launches = cached_launches(bench, rootless.docker_host, args.runs)
        bench.close_sessions()
        _remove_sessions(rootless.client())
        rates = proxy_rates(bench, rootless.docker_host, args.seconds, args.proxy_rounds)
        bench.close_sessions()
        _remove_sessions(rootless.client())
        rounds = culler_rounds(bench, args.sessions, args.rounds)
    finally:
        bench.close()
        _remove_sessions(rootless.client())
    print("1. launch of a cached image, click to ready")
    for name, values in launches.items():
        print(f"   {name:<9}: {summary(values)}")
    ratio = median(launches["rootless"]) / median(launches["rootful"])
    print(f"   rootless / rootful (median): {ratio:.2f}x  (target <= 1.2x)")
    print("2. proxy requests/s to one session (Jupyter's /api/status, wrk)")
    print(f"   {'':<44} {'c=1':>8} {'c=10':>8}")
    for name, (one, ten) in rates.items():
        print(f"   {name:<44} {one:>8.0f} {ten:>8.0f}")
    through = _ratios(rates["rootful, published port"], rates["rootful, bridge address"])
    without = _ratios(
        rates["  rootful, published port, without minibinder"],
        rates["  rootful, bridge address, without minibinder"],
    )
    print(f"   published / bridge, through minibinder: {_said(through)}  (target >= 0.9x)")
    print(f"   published / bridge, without minibinder: {_said(without)}  (docker-proxy's hop)")
    share = (through[0] / without[0], through[1] / without[1])
    print(f"   the two ratios' quotient (minibinder's own part): {_said(share)}  (1.00x: none)")
    print(f"3. culler round at {args.sessions} sessions, stats API (per round, medians)")
    for name, measured in rounds.items():
        cpu, engine, wall = ([value[i] for value in measured] for i in range(3))
        print(
            f"   {name:<11}: minibinder CPU {median(cpu):.2f} s (max {max(cpu):.2f}), "
            f"dockerd CPU {median(engine):.2f} s, wall {median(wall):.1f} s (n={len(measured)})"
        )
    print("   target: <= 1 CPU-second per round")


Rates = tuple[float, float]  # req/s at c=1, at c=10


def _ratios(numerator: Rates, denominator: Rates) -> Rates:
    return numerator[0] / denominator[0], numerator[1] / denominator[1]


def _said(ratios: Rates) -> str:
    return f"c=1 {ratios[0]:.2f}x, c=10 {ratios[1]:.2f}x"


def _remove_sessions(client: docker.DockerClient) -> None:
    for container in client.containers.list(all=True, filters={"label": "minibinder.session"}):
        container.remove(force=True, v=True)


if __name__ == "__main__":
    main()
