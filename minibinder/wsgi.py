"""Small WSGI pieces the proxy and the in-session helpers share."""

from __future__ import annotations

from collections.abc import Callable

StartResponse = Callable[..., object]


def reply(
    start_response: StartResponse, status: str, content_type: str, body: bytes
) -> list[bytes]:
    """A complete, uncached response with a known length."""
    start_response(
        status,
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
        ],
    )
    return [body]
