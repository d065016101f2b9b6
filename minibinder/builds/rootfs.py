"""The root filesystem the base image starts from, found or made without the Makefile: the
configured image if the engine has it, else pulled (`base_rootfs`, debian:bookworm-slim by
default), else made on this host with debootstrap (Linux, root) and imported. A host that can do
neither is told both ways in one line."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from ..docker_client import Docker
from ..errors import BuildError
from ..events import Event

DEBIAN_MIRROR = "http://deb.debian.org/debian"
# Debian suites by the tag a root filesystem image is asked under (bookworm: Python 3.11).
SUITES = {"bookworm": "bookworm", "bookworm-slim": "bookworm", "trixie": "trixie",
          "trixie-slim": "trixie", "bullseye": "bullseye", "bullseye-slim": "bullseye"}  # fmt: skip
LOCAL_ROOTFS = "minibinder-rootfs"  # what debootstrap-made images are named


def ensure_rootfs(docker: Docker, rootfs: str, mirror: str = DEBIAN_MIRROR) -> Iterator[Event]:
    """Yield progress until an image named by the last event's `imageName` holds a root
    filesystem for `rootfs`; raise BuildError naming both ways when there is no way here."""
    if docker.image_labels(rootfs) is not None:
        yield Event("built", f"Root filesystem {rootfs} is here\n", {"imageName": rootfs})
        return
    if rootfs.startswith(f"{LOCAL_ROOTFS}:"):  # made here, never published anywhere
        pulled = "it is made on this host"
    else:
        yield Event("building", f"Pulling {rootfs} ...\n")
        pulled = docker.pull(rootfs)
        if not pulled:
            yield Event("built", f"Pulled {rootfs}\n", {"imageName": rootfs})
            return
    suite = SUITES.get(rootfs.rpartition(":")[2], "")
    local = f"{LOCAL_ROOTFS}:{suite}"
    if suite and docker.image_labels(local) is not None:
        yield Event("built", f"Root filesystem {local} is here\n", {"imageName": local})
        return
    why_not = debootstrap_unavailable()
    if not suite or why_not:
        raise BuildError(
            f"the base image needs a root filesystem: pulling {rootfs} failed ({pulled}), and "
            + (
                f"debootstrap cannot make one here ({why_not})"
                if suite
                else f"debootstrap knows no Debian suite for {rootfs!r}"
            )
            + "; let the engine reach its registry (or set base_rootfs to an image it has), "
            "or run minibinder as root on Linux with debootstrap installed"
        )
    why = "" if rootfs == local else f"Pulling {rootfs} failed ({pulled}); m"
    yield Event("building", f"{why or 'M'}aking {local} with debootstrap ...\n")
    yield from debootstrap(docker, suite, local, mirror)
    yield Event("built", f"Made {local}\n", {"imageName": local})


def debootstrap_unavailable() -> str:
    """Why debootstrap cannot run here, or ""."""
    if os.name != "posix" or not Path("/proc/self").exists():
        return "it needs Linux"
    if os.geteuid() != 0:
        return "it needs root"
    if not shutil.which("debootstrap") and not shutil.which("apt-get"):
        return "debootstrap is not installed"
    return ""


def debootstrap(docker: Docker, suite: str, tag: str, mirror: str) -> Iterator[Event]:
    """debootstrap a minimal `suite` into a scratch folder and import it as `tag`."""
    if not shutil.which("debootstrap"):
        yield Event("building", "Installing debootstrap ...\n")
        install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "debootstrap"]
        try:
            _run(install)
        except BuildError:  # a fresh machine's package lists may be empty
            _run(["apt-get", "update", "-qq"])
            _run(install)
    with tempfile.TemporaryDirectory(prefix="minibinder-rootfs.", dir="/var/tmp") as work:
        root = Path(work) / "rootfs"
        yield Event("building", f"debootstrap --variant=minbase {suite} (about a minute) ...\n")
        _run(["debootstrap", "--variant=minbase", suite, str(root), mirror])
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (root / leftover).glob("*"):
                if path.is_file():
                    path.unlink()
        reader, writer = os.pipe()

        def write_tar() -> None:
            with os.fdopen(writer, "wb") as stream, tarfile.open(fileobj=stream, mode="w|") as tar:
                tar.add(str(root), arcname=".")

        thread = threading.Thread(target=write_tar, daemon=True)
        thread.start()
        with os.fdopen(reader, "rb") as stream:
            docker.import_image(stream, tag, ["ENV LANG=C.UTF-8", 'CMD ["/bin/bash"]'])
        thread.join()


def _run(command: list[str]) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(
        command, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env
    )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-5:])
        raise BuildError(f"{command[0]} failed: {tail}")
