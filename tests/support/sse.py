"""A minimal server-sent-events reader for tests."""

from __future__ import annotations

import json
import ssl
import urllib.request


def events(url: str, timeout: float = 600, context: ssl.SSLContext | None = None) -> list[dict]:
    """Read `data:` events until the stream ends or a `ready`/`failed` event arrives."""
    received = []
    with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        for raw in response:
            line = raw.decode().rstrip("\n")
            if not line.startswith("data: "):
                continue
            event = json.loads(line[len("data: ") :])
            received.append(event)
            if event["phase"] in ("ready", "failed"):
                break
    return received
