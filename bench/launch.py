"""Launch of a built image: minibinder's /build → ready vs. a bare `docker run` of the same image
plus waiting for Jupyter's /api/status (the physical floor), and a launch from the warm pool.

Usage: python -m bench.launch [--runs N]
"""

from __future__ import annotations

import argparse
import secrets
import time

import docker

from .common import NOTEBOOK, Bench, launch, summary, wait_for_pool, wait_http


def bare_docker_run(sdk: docker.DockerClient, image: str, network: str) -> float:
    """docker run + wait until Jupyter answers /api/status: nothing minibinder adds."""
    token, prefix = secrets.token_hex(8), f"/user/{secrets.token_hex(8)}/"
    started = time.perf_counter()
    container = sdk.containers.run(
        image,
        [
            "jupyter",
            "lab",
            "--ip=0.0.0.0",
            "--port=8888",
            "--no-browser",
            f"--ServerApp.base_url={prefix}",
        ],
        environment={"JUPYTER_TOKEN": token},
        network=network,
        detach=True,
        user="1000",
    )
    try:
        container.reload()
        address = container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
        wait_http(f"http://{address}:8888{prefix}api/status?token={token}")
        return time.perf_counter() - started
    finally:
        container.remove(force=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=8)
    args = parser.parse_args()
    bench = Bench()
    try:
        bench.git.create("bench/launch", {"index.ipynb": NOTEBOOK})
        spec = "gh/bench/launch/HEAD"
        serve = bench.serve(idle_timeout=3600, cull_interval=3600)
        _, ready = launch(serve, spec)  # builds the image once; not measured
        sdk = docker.from_env()
        network = "minibinder-sessions"
        floor, cold = [], []
        for _ in range(args.runs):  # interleaved, so drift hits both alike
            floor.append(bare_docker_run(sdk, ready["image"], network))
            cold.append(launch(serve, spec)[0])
        pooled_serve = bench.serve(warm_pool={spec: args.runs}, idle_timeout=3600)
        wait_for_pool(pooled_serve, args.runs)
        pooled = [launch(pooled_serve, spec)[0] for _ in range(args.runs)]
        print(f"bare docker run + /api/status : {summary(floor)}")
        print(f"minibinder cold launch         : {summary(cold)}")
        print(f"minibinder warm-pool launch    : {summary(pooled)}")
        ratio = sorted(cold)[len(cold) // 2] / sorted(floor)[len(floor) // 2]
        print(f"cold launch / bare floor (median): {ratio:.2f}x  (target <= 1.2x)")
        print(
            f"warm-pool launch median: {sorted(pooled)[len(pooled) // 2] * 1000:.0f} ms "
            "(target <= 300 ms)"
        )
    finally:
        bench.close()


if __name__ == "__main__":
    main()
