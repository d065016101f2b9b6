"""The base image before and after #21's additions (ipywidgets, jupyter-resource-usage,
jupyter-server-proxy, nbgitpuller, Node.js 20 from the package index): both Dockerfiles built
from the same root filesystem with no layer cache, interleaved; their sizes; then click-to-ready
of a cached session on each (a repository built on each base, launched through `/build`).

"Before" is base.Dockerfile as it was in the parent of the commit that added them (BEFORE),
read from this checkout's git history; "after" is the one minibinder ships.
Usage: python -m bench.base_image [--rounds 2] [--launches 8] [--rootfs IMAGE]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import tarfile
import time
from importlib import resources

import docker

from minibinder.builds.docker_build import run_build
from minibinder.config import read_extra_ca
from minibinder.docker_client import BuildRequest, Docker
from minibinder.settings_load import load_config

from .common import NOTEBOOK, ROOT, Bench, launch, summary

BEFORE = "6bd75ee^"  # "Base image: Node 20, npm globals, repo2docker's defaults" (#21)
TAG = "minibinder-bench-base:{}"


def dockerfile_before() -> bytes:
    shown = subprocess.run(
        ["git", "show", f"{BEFORE}:minibinder/builds/base.Dockerfile"],
        cwd=ROOT,
        capture_output=True,
    )
    if shown.returncode != 0:
        raise SystemExit(f"needs the git history of this checkout: {shown.stderr.decode()}")
    return shown.stdout


def context(dockerfile: bytes, extra_ca: bytes) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content in (("Dockerfile", dockerfile), ("extra-ca.crt", extra_ca)):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    buffer.seek(0)
    return buffer


def timed_base_build(docker_: Docker, config, dockerfile: bytes, tag: str, rootfs: str) -> float:
    """One build of every step (no layer cache), as `minibinder base-image` runs it."""
    request = BuildRequest(
        tag,
        config.build_memory_limit,
        {"minibinder.bench": "1"},
        fileobj=context(dockerfile, read_extra_ca(config)),
        buildargs={
            "ROOTFS": rootfs,
            "PACKAGE_INDEX_URL": config.package_index_url,
            "NPM_REGISTRY_URL": config.npm_registry_url,
        },
        no_cache=True,
    )
    started = time.perf_counter()
    for _ in run_build(docker_, request, config.build_timeout):
        pass
    return time.perf_counter() - started


def remove_images(sdk: docker.DockerClient) -> None:
    """The two bases and the repositories built on them: 1.4 GB no other bench shares."""
    tags = [tag for image in sdk.images.list() for tag in image.tags]
    built_on = [tag for tag in tags if "-bench-base-" in tag]  # the repositories' images
    for tag in built_on + [tag for tag in tags if tag.startswith(TAG.format(""))]:
        sdk.images.remove(tag, force=True)


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--launches", type=int, default=8)
    parser.add_argument("--rootfs", default="minibinder-rootfs:bookworm")
    args = parser.parse_args()
    config = load_config(
        overrides={"extra_ca_file": os.environ.get("MINIBINDER_EXTRA_CA_FILE", "")}
    )
    docker_ = Docker.connect()
    sdk = docker.from_env()
    shipped = resources.files("minibinder.builds").joinpath("base.Dockerfile").read_bytes()
    variants = {"before": dockerfile_before(), "after": shipped}
    builds: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):  # interleaved, so drift (the network, the disk) hits both
        for name, dockerfile in variants.items():
            builds[name].append(
                timed_base_build(docker_, config, dockerfile, TAG.format(name), args.rootfs)
            )
    sizes = {name: sdk.images.get(TAG.format(name)).attrs["Size"] / 1e6 for name in variants}

    bench = Bench()
    try:
        serves, specs = {}, {}
        for name in variants:
            bench.git.create(f"bench/base-{name}", {"index.ipynb": NOTEBOOK})
            specs[name] = f"gh/bench/base-{name}/HEAD"
            serves[name] = bench.serve(
                base_images={"3.11": TAG.format(name)}, idle_timeout=3600, cull_interval=3600
            )
            launch(serves[name], specs[name])  # builds the repository's image; not measured
        ready: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.launches):  # interleaved
            for name in variants:
                ready[name].append(launch(serves[name], specs[name])[0])
    finally:
        bench.close()
        remove_images(sdk)

    print(f"base image from {args.rootfs}, no layer cache, {args.rounds} round(s):")
    for name in variants:
        times = ", ".join(f"{t:.0f} s" for t in builds[name])
        print(f"  {name:<7}: {sizes[name]:.0f} MB, built in {times}")
    print(
        f"  after / before: size {sizes['after'] / sizes['before']:.2f}x, "
        f"build time {median(builds['after']) / median(builds['before']):.2f}x (medians)"
    )
    print("click-to-ready of a cached session (/build -> ready):")
    for name in variants:
        print(f"  on {name:<7}: {summary(ready[name])}")
    ratio = median(ready["after"]) / median(ready["before"])
    added = median(ready["after"]) - median(ready["before"])
    print(f"  after / before (median): {ratio:.2f}x, {added:+.2f} s (target <= 1.1x, < +1 s)")


if __name__ == "__main__":
    main()
