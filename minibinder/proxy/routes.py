"""The route table: which session a raw request path belongs to, and activity per route."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

Lookup = Callable[[str], "str | None"]  # session id → "host:port" while it may be reached
RecordActivity = Callable[[dict[str, float]], None]  # session id → Unix time of latest traffic

PREFIX = "/user/"
_ROUTE_RE = re.compile(r"^/user/([0-9a-f]{16})(/[^?#]*)?(\?.*)?$")
_DOT_SEGMENT = re.compile(r"(^|/)(\.|%2e){1,2}(/|$|\?)", re.IGNORECASE)


_SESSION_ID = re.compile(r"^[0-9a-f]{16}$")


def session_url(host_url: str, session_id: str, session_domain: str = "") -> str:
    """Where users reach a session: under the main address, or, with a `session_domain`, on
    an origin of its own (`<id>.<domain>`, same scheme and port), always at `/user/<id>/`."""
    path = f"{PREFIX}{session_id}/"
    if not session_domain:
        return host_url.rstrip("/") + path
    parts = urlsplit(host_url)
    if not parts.hostname:  # the main address is not known yet
        return path
    port = f":{parts.port}" if parts.port else ""
    root = parts.path.rstrip("/")  # a path prefix stays: the same server serves it
    return f"{parts.scheme}://{session_id}.{session_domain}{port}{root}{path}"


def session_of_host(host: str, session_domain: str) -> str | None:
    """The session id a Host header names (`<id>.<domain>[:port]`), or None."""
    if not session_domain:
        return None
    name = host.strip().lower().rsplit(":", 1)[0] if not host.startswith("[") else ""
    label, _, domain = name.partition(".")
    return label if domain == session_domain.lower() and _SESSION_ID.match(label) else None


class BadRoute(ValueError):
    """A path that must not be routed at all (dot segments, encoded separators)."""


def split_route(raw_path: str) -> tuple[str, str] | None:
    """`/user/<id>/rest?query` → (id, raw path); None if the path names no session.

    Works on the raw (still percent-encoded) request path, so an encoded `/`, `.` or `\\` can
    never change which session is chosen; dot segments anywhere are refused outright.
    """
    if not raw_path.startswith(PREFIX):
        return None
    path = raw_path.split("?", 1)[0]
    if _DOT_SEGMENT.search(path) or "\\" in path or "%5c" in path.lower():
        raise BadRoute("dot segments and backslashes are not allowed in session paths")
    match = _ROUTE_RE.match(raw_path)
    if not match:
        head = path[len(PREFIX) :].split("/", 1)[0]
        if "%" in head:
            raise BadRoute("encoded characters are not allowed in the session part of a path")
        return None
    return match.group(1), raw_path


class RouteTable:
    """Session id → `host:port`, cached briefly per process; `lookup` asks the shared truth.

    Activity is kept in memory and handed to `record_activity` at most every `flush_seconds`,
    so the proxy's hot path never waits for a database write.
    """

    def __init__(
        self,
        lookup: Lookup,
        record_activity: RecordActivity,
        ttl: float = 2.0,
        flush_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ):
        self._lookup, self.record_activity = lookup, record_activity
        self.ttl, self.flush_seconds = ttl, flush_seconds
        self.clock, self.wall_clock = clock, wall_clock
        self._cache: dict[str, tuple[str, float]] = {}
        self._activity: dict[str, float] = {}
        self._last_flush = clock()
        self._lock = threading.Lock()

    def lookup(self, session_id: str) -> str | None:
        now = self.clock()
        cached = self._cache.get(session_id)
        if cached and now - cached[1] < self.ttl:
            return cached[0]
        target = self._lookup(session_id)
        if not target:
            self._cache.pop(session_id, None)
            return None
        self._cache[session_id] = (target, now)
        return target

    def forget(self, session_id: str) -> None:
        self._cache.pop(session_id, None)
        with self._lock:
            self._activity.pop(session_id, None)

    def touch(self, session_id: str) -> None:
        """Note real traffic on a route (a response < 300, WebSocket data)."""
        if self.note(session_id):
            self.flush()

    def note(self, session_id: str) -> bool:
        """Note real traffic without writing it: True (once per `flush_seconds`) when the
        caller should now call `flush`, e.g. from a thread of its own."""
        self._activity[session_id] = self.wall_clock()
        now = self.clock()
        if now - self._last_flush < self.flush_seconds:
            return False
        self._last_flush = now
        return True

    def flush(self) -> None:
        with self._lock:
            self._last_flush = self.clock()
            pending, self._activity = self._activity, {}
        if pending:
            self.record_activity(pending)
