"""minibinder across a swarm (#23), on this one machine: three namespaced Docker daemons in a
swarm with a registry (tests/support/swarm_cluster.py), `serve` talking to the manager.

1. Cold launches of one prebuilt image: N at once (default 30) across 3 nodes, vs the same N
   with the workers drained (everything on the manager node); time until all are ready, p50.
   Every node has the image before the first round (pulled by digest), so a round measures
   placement and start, not the registry. The nodes share this machine's 2 cores: expect no
   speed-up, only the cost of spreading (issue 23 expects <= 1.1x).
2. Added proxy latency: p50 of a small request (Jupyter's /api/status) through minibinder's
   proxy to a session on a worker node (over the cluster's bridge, a host-mode published
   port) vs to a session of `placement = "local"` on the host's own engine (its address on
   the session network), in interleaved blocks; and the same requests straight to each
   session's endpoint, so the proxy's own cost can be told from the path's.

Usage (root, the host's Docker engine up, Debian's docker-registry installed):
    python -m bench.swarm [--sessions 30] [--requests 1000]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from tests.support.serving import ServeProcess, write_config
from tests.support.swarm_cluster import SwarmCluster

from .common import IMAGE_PREFIX, NOTEBOOK, Bench, launch, percentile

SMALL = {
    "session_memory_reservation": "256M",
    "session_memory_limit": "512M",
    "idle_timeout": 3600,
    "launch_timeout": 600,
    "threads": 256,
    "cull_interval": 2,
}
BASE_IMAGE = "minibinder-base:py3.11"


def serve_on(bench: Bench, name: str, docker_host: str = "", **settings) -> ServeProcess:
    (bench.folder / name).mkdir()
    config = write_config(
        bench.folder / name / "minibinder.toml",
        bench.folder / name / "data",
        image_prefix=IMAGE_PREFIX,
        allowed_clone_schemes=["https", "git"],
        internal_hosts=["127.0.0.1"],
        github_url=bench.git.base_url,
        extra_ca_file=os.environ.get("MINIBINDER_EXTRA_CA_FILE", ""),
        **SMALL,
        **settings,
    )
    serve = ServeProcess(config, bench.folder / name / "serve.log", docker_host=docker_host)
    serve.data_dir = bench.folder / name / "data"
    bench.serves.append(serve)
    return serve.start()


def stampede(serve: ServeProcess, spec: str, count: int) -> tuple[float, float, int]:
    """(all ready after, p50, errors) of `count` launches at once, each its own browser."""

    def one(_):
        try:
            return launch(serve, spec, as_browser=True)[0]
        except Exception:  # counted: errors are a result here
            return None

    started = time.perf_counter()
    with ThreadPoolExecutor(count) as executor:
        times = list(executor.map(one, range(count)))
    total = time.perf_counter() - started
    done = [t for t in times if t is not None]
    return total, percentile(done, 0.5) if done else float("nan"), count - len(done)


def nodes_used(serve: ServeProcess) -> dict[str, int]:
    with sqlite3.connect(serve.data_dir / "minibinder.sqlite") as db:
        rows = db.execute("SELECT node, count(*) FROM sessions GROUP BY node").fetchall()
    return {node: count for node, count in rows}


def end_all(cluster: SwarmCluster, serve: ServeProcess) -> None:
    """Remove every session's service; wait until serve's reconciler has dropped them."""
    client = cluster.manager.client()
    for service in client.services.list(filters={"label": "minibinder.session"}):
        service.remove()
    deadline = time.monotonic() + 120
    while sum(nodes_used(serve).values()) and time.monotonic() < deadline:
        time.sleep(1)
    # The low-level list: the high-level one inspects each container, which may be gone.
    while client.api.containers(filters={"label": "minibinder.session"}):
        time.sleep(0.5)  # the manager's own tasks are gone (the workers' go alike)


def availability(cluster: SwarmCluster, nodes, value: str) -> None:
    for node in nodes:
        cluster.manager.docker("node", "update", "--availability", value, node.node_id())


def latency(url: str, token: str, count: int) -> list[float]:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    times = []
    for _ in range(count):
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    bench = Bench()
    cluster = SwarmCluster(bench.folder / "cluster")
    try:
        started = time.perf_counter()
        cluster.start()
        cluster.load_images((BASE_IMAGE,))
        print(
            f"cluster of 3 up, base image loaded into the manager: "
            f"{time.perf_counter() - started:.0f} s"
        )
        bench.git.create("bench/swarm", {"index.ipynb": NOTEBOOK})
        spec = "gh/bench/swarm/HEAD"
        serve = serve_on(
            bench,
            "swarm",
            cluster.manager.docker_host,
            placement="swarm",
            registry=cluster.registry,
        )
        _, first = launch(serve, spec)  # the build and the push: not measured
        image = subprocess.run(
            [
                "docker",
                "service",
                "inspect",
                "--format",
                "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
                f"minibinder-session-{first['url'].rstrip('/').rsplit('/', 1)[1]}",
            ],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "DOCKER_HOST": cluster.manager.docker_host},
        ).stdout.strip()
        for node in cluster.workers:
            node.docker("pull", image)  # every node has the image: a round measures starts
        end_all(cluster, serve)

        spread = stampede(serve, spec, args.sessions)
        spread_nodes = nodes_used(serve)
        print(f"3 nodes: {spread}, {spread_nodes}", flush=True)
        end_all(cluster, serve)
        availability(cluster, cluster.workers, "drain")
        single = stampede(serve, spec, args.sessions)
        single_nodes = nodes_used(serve)
        end_all(cluster, serve)
        availability(cluster, cluster.workers, "active")
        for name, (total, p50, errors), used in (
            ("3 nodes", spread, spread_nodes),
            ("1 node", single, single_nodes),
        ):
            print(
                f"{args.sessions} cold launches on {name}: all ready after {total:.1f} s, "
                f"p50 {p50:.2f} s, errors {errors}; sessions per node {used}"
            )
        print(f"3 nodes / 1 node, all ready: {spread[0] / single[0]:.2f}x (issue: <= 1.1x)")

        # A session on a worker (the manager drained for the launch), and a local one.
        availability(cluster, [cluster.manager], "drain")
        _, on_worker = launch(serve, spec)
        availability(cluster, [cluster.manager], "active")
        local_serve = serve_on(bench, "local")
        _, local = launch(local_serve, spec)
        targets = {}
        for name, ready, data in (
            ("worker", on_worker, serve.data_dir),
            ("local", local, local_serve.data_dir),
        ):
            with sqlite3.connect(data / "minibinder.sqlite") as db:
                session = ready["url"].rstrip("/").rsplit("/", 1)[1]
                targets[name] = db.execute(
                    "SELECT target FROM sessions WHERE id = ?", (session,)
                ).fetchone()[0]
        samples: dict[str, list[float]] = {
            key: [] for key in ("worker", "local", "worker direct", "local direct")
        }
        block = 100
        for _ in range(max(1, args.requests // block)):
            for name, ready in (("worker", on_worker), ("local", local)):
                samples[name] += latency(f"{ready['url']}api/status", ready["token"], block)
                prefix = ready["url"].split("/user/", 1)[1]
                direct = f"http://{targets[name]}/user/{prefix}api/status"
                samples[f"{name} direct"] += latency(direct, ready["token"], block)
        p50 = {name: percentile(values, 0.5) * 1000 for name, values in samples.items()}
        for name, value in p50.items():
            print(f"p50 {name:<14}: {value:.3f} ms (n={len(samples[name])})")
        print(
            f"added by a worker: {p50['worker'] - p50['local']:+.3f} ms through the proxy "
            f"(issue: <= +0.2 ms), {p50['worker direct'] - p50['local direct']:+.3f} ms "
            "straight to the session"
        )
    finally:
        for serve_ in bench.serves:
            serve_.stop()
        cluster.stop()
        bench.close()


if __name__ == "__main__":
    main()
