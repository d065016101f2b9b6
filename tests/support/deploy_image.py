"""minibinder's own image (deploy/Dockerfile) built from this checkout, for the tests that run
minibinder in a container: as `serve` (test_operate) and as the swarm's agent service
(test_swarm).

The wheel is built with a fixed SOURCE_DATE_EPOCH, so the same checkout gives the same bytes and
the host daemon's build cache holds across tests and runs; the Dockerfile installs the
dependencies in a layer of their own, so a change of minibinder's code rebuilds only the
wheel's layer."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import docker

from .wheel import ROOT, build_wheel


def build_minibinder_image(folder: Path, tag: str, extra_ca_file: str = "") -> float:
    """Build deploy/Dockerfile from a wheel of this checkout as `tag` on the host daemon, in a
    build context under `folder`; the seconds it took."""
    started = time.monotonic()
    context = folder / "deploy"
    shutil.copytree(ROOT / "deploy", context, ignore=shutil.ignore_patterns("dist", "*.pem"))
    build_wheel(context / "dist", reproducible=True)
    # The CA a TLS-intercepting proxy needs (make test passes the host's bundle), for pip.
    (context / "extra-ca.pem").write_text(Path(extra_ca_file).read_text() if extra_ca_file else "")
    docker.from_env(timeout=600).images.build(
        path=str(context),
        dockerfile="Dockerfile",
        tag=tag,
        rm=True,
        buildargs={"BASE": "minibinder-rootfs:bookworm"},
    )
    return time.monotonic() - started
