"""A minimal server-sent-events reader for tests."""

from __future__ import annotations

import json
import ssl
import urllib.request


def events(
    url: str,
    timeout: float = 600,
    context: ssl.SSLContext | None = None,
    opener: urllib.request.OpenerDirector | None = None,
) -> list[dict]:
    """Read `data:` events until the stream ends or a `ready`/`failed` event arrives. An
    `opener` with a cookie jar reads them as a browser that holds cookies would."""
    received = []
    opened = (
        opener.open(url, timeout=timeout)
        if opener
        else urllib.request.urlopen(url, timeout=timeout, context=context)
    )
    with opened as response:
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


def browser_events(base: str, spec: str, timeout: float = 600) -> list[dict]:
    """A launch as a browser makes it: the launch page first (it gives the browser its
    anonymous cookie), then the event stream, cookie and all."""
    import http.cookiejar

    browser = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    with browser.open(f"{base}/v2/{spec}", timeout=60) as page:
        page.read()
    return events(f"{base}/build/{spec}", timeout, opener=browser)
