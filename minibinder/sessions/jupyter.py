"""Questions minibinder asks a session's Jupyter server: does it answer, what is it doing.

Every question carries `no_track_activity`, so that minibinder's own probes never look like
the user's work to Jupyter's activity tracking.
"""

from __future__ import annotations

import http.client
import json
from datetime import datetime
from typing import Any

from ..store import SessionRecord


def _get(target: str, path: str, headers: dict[str, str], timeout: float) -> tuple[int, Any]:
    """(HTTP status, decoded JSON or None); status 0 when the server does not answer."""
    host, port = target.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        return response.status, (json.loads(body) if response.status == 200 else None)
    except (OSError, ValueError):
        return 0, None
    finally:
        connection.close()


def answers(target: str, prefix: str) -> bool:
    """The readiness probe: Jupyter's unauthenticated version endpoint says 200."""
    return _get(target, f"{prefix}api", {}, timeout=2)[0] == 200


def status(record: SessionRecord, headers: dict[str, str] | None = None) -> dict | None:
    """/api/status (last activity, kernel count), asked with the session's token or with a
    caller's own credentials; None when Jupyter refuses or does not answer."""
    if not record.target:
        return None
    return _get(
        record.target,
        f"{record.prefix}api/status?no_track_activity=1",
        headers or {"Authorization": f"token {record.token}"},
        timeout=5,
    )[1]


def busy_kernels(record: SessionRecord) -> int:
    kernels = (
        _get(
            record.target,
            f"{record.prefix}api/kernels?no_track_activity=1",
            {"Authorization": f"token {record.token}"},
            timeout=5,
        )[1]
        or []
    )
    return sum(1 for kernel in kernels if kernel.get("execution_state") == "busy")


def parse_time(value: str | None) -> float | None:
    """Jupyter's ISO timestamps ("2026-11-25T20:19:28.9Z") as Unix time."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
