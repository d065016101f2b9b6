"""Which headers cross the proxy, both ways (pure): hop-by-hop ones never do, minibinder's own
cookies never reach a session, and X-Forwarded-* are set by the proxy alone.

Headers are (name, value) pairs of bytes, as they came off the wire.
"""

from __future__ import annotations

from urllib.parse import quote

Headers = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)
OWN_COOKIE_PREFIX = "minibinder"
# On every answer minibinder itself gives (its pages, the operator's, its error pages), never on
# session content: no other page may frame them (a session page framing the signed-in operator's
# Stop buttons, say). A second CSP header only narrows a page's own policy.
OWN_PAGE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"X-Frame-Options", b"DENY"),
    (b"Content-Security-Policy", b"frame-ancestors 'none'"),
)  # minibinder's own cookies never reach a session

# The client's own word about where it came from: replaced by minibinder's.
FORWARDING = frozenset(
    {b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-real-ip", b"forwarded"}
)


def connection_tokens(value: bytes) -> set[bytes]:
    return {token.strip().lower() for token in value.split(b",") if token.strip()}


def strip_own_cookies(cookie_header: str) -> str:
    kept = [
        part.strip()
        for part in cookie_header.split(";")
        if part.strip() and not part.strip().lower().startswith(OWN_COOKIE_PREFIX)
    ]
    return "; ".join(kept)


def _dropped(headers: Headers) -> set[bytes]:
    dropped = set(HOP_BY_HOP)
    for name, value in headers:
        if name.lower() == b"connection":
            dropped |= connection_tokens(value)
    return dropped


def forward_headers(headers: Headers, client: str, scheme: str, upgrade: bool = False) -> Headers:
    """The client's headers minus hop-by-hop ones (and Expect, which the proxy answers itself),
    plus X-Forwarded-* naming `client` and `scheme`. `Host` is kept."""
    dropped = _dropped(headers) | FORWARDING | {b"expect"}
    if upgrade:  # the WebSocket handshake needs exactly these hop-by-hop headers
        dropped -= {b"connection", b"upgrade"}
    sent: Headers = []
    host = b""
    for name, value in headers:
        lower = name.lower()
        if lower in dropped:
            continue
        if lower == b"host":
            host = value
        elif lower == b"cookie":
            value = strip_own_cookies(value.decode("latin-1")).encode("latin-1")
            if not value:
                continue
        sent.append((name, value))
    sent.append((b"X-Forwarded-For", client.encode("latin-1")))
    sent.append((b"X-Forwarded-Proto", scheme.encode("latin-1")))
    if host:
        sent.append((b"X-Forwarded-Host", host))
    return sent


def response_headers(headers: Headers) -> Headers:
    """A response's headers minus hop-by-hop ones (the proxy frames the body itself)."""
    dropped = _dropped(headers)
    return [(name, value) for name, value in headers if name.lower() not in dropped]


def header(headers: Headers, name: bytes) -> bytes | None:
    """The first value of `name` (lower case), or None."""
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


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
