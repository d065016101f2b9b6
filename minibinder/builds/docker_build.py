"""Run one Docker build and turn its output stream into progress events, with a deadline."""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..docker_client import BuildRequest, Docker
from ..errors import BuildError
from ..events import Event

_STEP_RE = re.compile(r"^Step (\d+/\d+) : (.*)$")
_RUNNING_RE = re.compile(r"^ ---> Running in ([0-9a-f]{12,64})\s*$")
LOG_TAIL_LINES = 20
WATCH_SECONDS = 0.5


@dataclass
class BuildProgress:
    """What the stream has said so far: the current step, its container, the recent log."""

    step: str = ""
    container: str = ""
    tail: deque = field(default_factory=lambda: deque(maxlen=LOG_TAIL_LINES))
    error: str = ""

    def feed(self, chunk: dict[str, Any]) -> str | None:
        """Take one decoded chunk; return the log text it carries, if any."""
        if "error" in chunk:
            self.error = str(chunk.get("error") or "").strip()
            return None
        text = chunk.get("stream")
        if not isinstance(text, str):
            status = chunk.get("status")
            return f"{status}\n" if isinstance(status, str) else None
        for line in text.splitlines():
            step = _STEP_RE.match(line)
            if step:
                self.step = f"step {step.group(1)} ({step.group(2)[:120]})"
                self.container = ""
            running = _RUNNING_RE.match(line)
            if running:
                self.container = running.group(1)
            if line.strip():
                self.tail.append(line)
        return text

    def failure_message(self, reason: str) -> str:
        where = f" at {self.step}" if self.step else ""
        tail = "\n".join(self.tail)
        return f"Build failed{where}: {reason}\n--- last lines of the build log ---\n{tail}"


def run_build(
    docker: Docker,
    request: BuildRequest,
    timeout: float,
    abandoned: Callable[[], bool] = lambda: False,
    log_limit: int = 0,
) -> Iterator[Event]:
    """Build `tag`, yielding one `building` event per log chunk; raise BuildError on failure.

    The classic builder tags the image only when every step succeeded, so a failed or stopped
    build leaves no image under `tag`. Past the deadline, or once `abandoned()` says nobody waits
    for the image any more, the running step's container is killed. Past `log_limit` bytes
    (0: no limit) the log is cut: what follows is neither shown nor kept; the build goes on.
    """
    progress = BuildProgress()
    stopped: list[str] = []  # why, once the watchdog stopped the build
    done = threading.Event()
    deadline = time.monotonic() + timeout

    def watch() -> None:
        while not done.wait(WATCH_SECONDS):
            if time.monotonic() > deadline:
                stopped.append(f"stopped after {timeout:g} s (build_timeout)")
            elif abandoned():
                stopped.append("stopped: nobody is waiting for this build any more")
            else:
                continue
            if progress.container:
                docker.kill_container(progress.container)
            return

    threading.Thread(target=watch, name="build watchdog", daemon=True).start()
    started, shown = time.monotonic(), 0
    try:
        for chunk in docker.build(request):
            text = progress.feed(chunk)
            if text and (not log_limit or shown < log_limit):
                shown += len(text.encode())
                yield Event("building", text)
                if log_limit and shown >= log_limit:
                    yield Event(
                        "building",
                        f"\n[minibinder] The build log passed "
                        f"{log_limit // 2**20} MiB (build_log_limit); the rest of it is "
                        "neither shown nor kept. The build goes on.\n",
                    )
            if stopped and not progress.container:
                break  # between steps: nothing to kill, stop reading instead
    finally:
        done.set()
    if stopped:
        raise BuildError(progress.failure_message(stopped[0]))
    if progress.error:
        raise BuildError(progress.failure_message(_explain(progress.error)))
    if docker.image_labels(request.tag) is None:
        raise BuildError(progress.failure_message("Docker finished without an image"))
    yield Event("building", f"Built {request.tag} in {time.monotonic() - started:.1f} s\n")


def _explain(error: str) -> str:
    if "no space left on device" in error.lower():
        return f"the disk is full ({error})"
    if "returned a non-zero code: 137" in error:
        return f"{error} (killed: probably out of memory; build_memory_limit)"
    return error
