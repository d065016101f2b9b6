"""Which headers cross the proxy, both ways (pure): hop-by-hop ones never do, minibinder's own
cookies never reach a session, and X-Forwarded-* are set by the proxy alone."""

from __future__ import annotations

import http.client
from urllib.parse import quote

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
OWN_COOKIE_PREFIX = "minibinder"  # minibinder's own cookies never reach a session


def connection_tokens(value: str) -> set[str]:
    return {token.strip().lower() for token in value.split(",") if token.strip()}


def strip_own_cookies(cookie_header: str) -> str:
    kept = [
        part.strip()
        for part in cookie_header.split(";")
        if part.strip() and not part.strip().lower().startswith(OWN_COOKIE_PREFIX)
    ]
    return "; ".join(kept)


# The client's own word about where it came from: replaced by minibinder's.
FORWARDING = {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-real-ip", "forwarded"}


def forward_headers(environ: dict, upgrade: bool = False) -> list[tuple[str, str]]:
    """The client's headers minus hop-by-hop ones, plus X-Forwarded-*. `Host` is kept."""
    dropped = set(HOP_BY_HOP) | connection_tokens(environ.get("HTTP_CONNECTION", ""))
    if upgrade:  # the WebSocket handshake needs exactly these hop-by-hop headers
        dropped -= {"connection", "upgrade"}
    dropped |= FORWARDING
    headers = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").title()
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            name = key.replace("_", "-").title()
        else:
            continue
        if name.lower() in dropped:
            continue
        if name == "Cookie":
            value = strip_own_cookies(value)
            if not value:
                continue
        headers.append((name, value))
    headers.append(("X-Forwarded-For", environ.get("REMOTE_ADDR", "")))
    headers.append(("X-Forwarded-Proto", environ.get("wsgi.url_scheme", "http")))
    if environ.get("HTTP_HOST"):
        headers.append(("X-Forwarded-Host", environ["HTTP_HOST"]))
    return headers


def response_headers(upstream: http.client.HTTPResponse) -> list[tuple[str, str]]:
    dropped = set(HOP_BY_HOP) | connection_tokens(upstream.getheader("Connection") or "")
    return [(name, value) for name, value in upstream.getheaders() if name.lower() not in dropped]


def raw_request_path(environ: dict) -> str:
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return raw
    query = environ.get("QUERY_STRING", "")
    return quote(environ.get("PATH_INFO", "")) + (f"?{query}" if query else "")


def session_cookie(set_cookie: str, prefix: str) -> bool:
    """Whether a session may set this cookie: only for its own path (`/user/<id>/`), never
    for another path of the host (minibinder's pages, other sessions) nor with a Domain."""
    path = None
    for attribute in set_cookie.split(";")[1:]:
        name, _, value = attribute.strip().partition("=")
        name = name.strip().lower()
        if name == "domain":
            return False
        if name == "path":
            path = value.strip()
    if path is None:  # the browser takes the request's folder: inside the session
        return True
    return path == prefix.rstrip("/") or path.startswith(prefix)
