"""One build per image, across threads and processes: a file lock plus a log others can follow;
build slots; work folders that outlive no build; and reading build logs back for the operator."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..events import Event

POLL_SECONDS = 0.2


def _lock_file(path: Path) -> int | None:
    """Take the exclusive lock on `path`; None when someone else holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _is_locked(path: Path) -> bool:
    fd = _lock_file(path)
    if fd is None:
        return True
    os.close(fd)
    return False


def run_shared(key: str, folder: Path, work: Callable[[], Iterator[Event]]) -> Iterator[Event]:
    """Run `work` as the leader of `key`, or follow the leader's events if one is running.

    The leader writes every event as a JSON line to `<folder>/<key>.log` while holding
    `<folder>/<key>.lock`; a follower replays that log from the start, then tails it until the
    lock is released, holding a shared lock on `<folder>/<key>.watch` meanwhile (see
    `followed`). Locks held by a dead process are released by the kernel.
    """
    folder.mkdir(parents=True, exist_ok=True)
    lock_path, log_path = folder / f"{key}.lock", folder / f"{key}.log"
    fd = _lock_file(lock_path)
    if fd is None:
        watch = os.open(folder / f"{key}.watch", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(watch, fcntl.LOCK_SH)
            yield from _follow(lock_path, log_path)
        finally:
            os.close(watch)
        return
    try:
        with open(log_path, "w", encoding="utf-8") as log:
            for event in work():
                log.write(event.to_json() + "\n")
                log.flush()
                yield event
    finally:
        os.close(fd)


def followed(key: str, folder: Path) -> bool:
    """Whether another request follows the build of `key` (in any worker process): followers
    hold a shared lock on its watch file."""
    return _is_locked(folder / f"{key}.watch")


def _follow(lock_path: Path, log_path: Path) -> Iterator[Event]:
    yield Event("waiting", "An identical build is already running; following its log\n")
    # The leader truncates the log right after taking the lock; give it a moment to do so.
    time.sleep(POLL_SECONDS)
    position, buffer = 0, ""
    while True:
        leader_done = not _is_locked(lock_path)
        try:
            with open(log_path, encoding="utf-8") as log:
                log.seek(position)
                buffer += log.read()
                position = log.tell()
        except FileNotFoundError:
            pass
        *lines, buffer = buffer.split("\n")
        for line in lines:
            if line.strip():
                yield Event.from_json(line)
        if leader_done:
            return
        time.sleep(POLL_SECONDS)


def take_slot(folder: Path, slots: int) -> int | None:
    """Hold one of `slots` build slots (a lock file each); None when all are taken."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(slots):
        fd = _lock_file(folder / f"slot-{index}.lock")
        if fd is not None:
            return fd
    return None


def release_slot(fd: int) -> None:
    os.close(fd)


@dataclass(frozen=True)
class BuildLogInfo:
    key: str
    time: float
    outcome: str  # the phase of the last event: built, failed, or "" while running


def _events_of(path: Path) -> Iterator[Event]:
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                yield Event.from_json(line)
            except (ValueError, KeyError, TypeError):
                continue


def recent_builds(folder: Path, limit: int = 30) -> list[BuildLogInfo]:
    """The latest build logs, newest first, with how each ended."""
    logs = sorted(folder.glob("*.log"), key=lambda p: p.stat().st_mtime, reverse=True)[:limit]
    rows = []
    for path in logs:
        last = None
        for event in _events_of(path):
            last = event
        rows.append(BuildLogInfo(path.stem, path.stat().st_mtime, last.phase if last else ""))
    return rows


def build_log_text(folder: Path, key: str) -> str | None:
    """The messages of one build's log as plain text; None when there is no such build."""
    path = folder / f"{key}.log"
    if "/" in key or key.startswith(".") or not path.is_file():
        return None
    return "".join(event.message for event in _events_of(path))


def sweep_build_logs(folder: Path, older_than: float, now: float | None = None) -> list[str]:
    """Remove the logs (and lock files) of builds that ended more than `older_than` seconds
    ago; a build still running keeps its log. Returns the keys removed."""
    now = time.time() if now is None else now
    removed = []
    for path in sorted(folder.glob("*.log")) if folder.is_dir() else []:
        key = path.stem
        try:
            if now - path.stat().st_mtime <= older_than or _is_locked(folder / f"{key}.lock"):
                continue
        except FileNotFoundError:
            continue
        for name in (f"{key}.log", f"{key}.lock", f"{key}.watch"):
            (folder / name).unlink(missing_ok=True)
        removed.append(key)
    return removed


@contextmanager
def work_folder(scratch: Path) -> Iterator[Path]:
    """A fresh folder for one build, held by a lock while the build runs and removed after.

    A worker killed mid-build leaves its folder behind with nobody holding the lock:
    `sweep_work_folders` removes those.
    """
    scratch.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="build-", dir=scratch))
    fd = _lock_file(folder / ".lock")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if fd is not None:
            os.close(fd)


def sweep_work_folders(scratch: Path) -> list[str]:
    """Remove the work folders of builds that are no longer running; return their names."""
    removed = []
    for folder in sorted(scratch.glob("build-*")) if scratch.is_dir() else []:
        fd = _lock_file(folder / ".lock")
        if fd is None:  # a build holds it
            continue
        try:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
        finally:
            os.close(fd)
    return removed
