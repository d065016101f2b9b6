"""A container's CPU time and memory read straight from its cgroup files: a file read, where
Docker's stats API takes about a second per container (it samples twice). Docker's layouts and
rootful Podman's (libpod-ID under libpod_parent, or machine.slice with systemd)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def cgroup_usage(container_id: str, root: Path = ROOT) -> tuple[float, int] | None:
    """(CPU-seconds used in all, memory in use now), or None when the files are not here
    (another cgroup layout, or minibinder itself runs in a container)."""
    for folder in (
        root / "system.slice" / f"docker-{container_id}.scope",  # v2, systemd
        root / "docker" / container_id,  # v2, cgroupfs
        root / "machine.slice" / f"libpod-{container_id}.scope",  # v2, Podman with systemd
        root / "libpod_parent" / f"libpod-{container_id}",  # v2, Podman with cgroupfs
    ):
        stat, memory = _read(folder / "cpu.stat"), _read(folder / "memory.current")
        if stat is not None and memory is not None:
            fields = dict(line.split() for line in stat.splitlines() if len(line.split()) == 2)
            if "usage_usec" in fields:
                return int(fields["usage_usec"]) / 1e6, int(memory)
    for cpu_folder, memory_folder in (  # v1: one hierarchy per controller
        (root / "cpuacct" / "docker" / container_id, root / "memory" / "docker" / container_id),
        (root / "cpu,cpuacct" / "docker" / container_id, root / "memory" / "docker" / container_id),
        (
            root / "cpuacct" / "system.slice" / f"docker-{container_id}.scope",
            root / "memory" / "system.slice" / f"docker-{container_id}.scope",
        ),
        (  # rootful Podman with cgroupfs (measured here)
            root / "cpuacct" / "libpod_parent" / f"libpod-{container_id}",
            root / "memory" / "libpod_parent" / f"libpod-{container_id}",
        ),
    ):
        nanoseconds = _read(cpu_folder / "cpuacct.usage")
        memory = _read(memory_folder / "memory.usage_in_bytes")
        if nanoseconds is not None and memory is not None:
            return int(nanoseconds) / 1e9, int(memory)
    return None


def cgroups_visible(root: Path = ROOT) -> bool:
    """Whether this process sees the engine's container cgroups where `cgroup_usage` reads
    them (not so beside rootless engines, Docker Desktop's VM, or inside a container)."""
    return (
        any((root / "system.slice").glob("docker-*.scope"))
        or (root / "docker").is_dir()
        or (root / "memory" / "docker").is_dir()
        or (root / "cpuacct" / "docker").is_dir()
        or (root / "libpod_parent").is_dir()
        or (root / "memory" / "libpod_parent").is_dir()
        or any((root / "machine.slice").glob("libpod-*.scope"))
    )
