"""HTTP/1.1 on the wire, for the front (pure): a parsed request head, the WSGI environ the
guards read from it, and the bytes of heads and small responses."""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import unquote_to_bytes

from .headers import OWN_PAGE_HEADERS, Headers, header

LISTENER_PORT = "minibinder.listener_port"  # environ key: the local port a request came in on
# environ key: a threading.Event the front sets when the client's connection closes, so a
# long answer (an event stream) learns at once that nobody reads it any more
CLIENT_GONE = "minibinder.client_gone"


@dataclass
class RequestHead:
    method: str
    target: bytes  # the raw request target: path and query, still percent-encoded
    headers: Headers
    version: str  # "1.1" or "1.0"
    keep_alive: bool
    upgrade: bool  # the parser saw an upgrade: nothing after the head is HTTP any more
    chunked: bool
    length: int | None
    expects_continue: bool
    websocket: bool

    @classmethod
    def of(
        cls,
        method: str,
        target: bytes,
        headers: Headers,
        version: str,
        keep_alive: bool,
        upgrade: bool,
    ) -> RequestHead:
        """From what llhttp parsed (it already refused ambiguous framing: both lengths, two
        lengths, a coding after chunked)."""
        length_value = header(headers, b"content-length")
        chunked = header(headers, b"transfer-encoding") is not None
        return cls(
            method,
            target,
            headers,
            version,
            keep_alive,
            upgrade,
            chunked,
            int(length_value) if length_value is not None else None,
            (header(headers, b"expect") or b"").lower() == b"100-continue",
            upgrade and (header(headers, b"upgrade") or b"").lower() == b"websocket",
        )

    @property
    def has_body(self) -> bool:
        return not self.upgrade and (self.chunked or bool(self.length))


def canonical_path(path: str) -> str:
    """A decoded path as routing reads it: repeated slashes collapsed, `.` and `..` segments
    resolved (never above the root), a trailing slash kept. Every decision about a path and
    the routing after it read this one form, so `//admin/` is `/admin/` for both."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    canonical = "/" + "/".join(segments)
    if segments and (path.endswith("/") or path.rsplit("/", 1)[-1] in (".", "..")):
        canonical += "/"
    return canonical


def environ_for(head: RequestHead, peer: str, port: int, scheme: str) -> dict:
    """The WSGI environ of a request the front read (the body is added by the caller)."""
    path, _, query = head.target.partition(b"?")
    environ = {
        "REQUEST_METHOD": head.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": canonical_path(unquote_to_bytes(path).decode("latin-1")),
        "QUERY_STRING": query.decode("latin-1"),
        "RAW_URI": head.target.decode("latin-1"),
        "SERVER_PROTOCOL": f"HTTP/{head.version}",
        "SERVER_NAME": "minibinder",
        "SERVER_PORT": str(port),
        "REMOTE_ADDR": peer,
        "wsgi.url_scheme": scheme,
        LISTENER_PORT: port,
    }
    for name, value in head.headers:
        key = name.decode("latin-1").upper().replace("-", "_")
        if "_" in name.decode("latin-1"):
            continue  # would pass for another header (gunicorn drops these too)
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        text = value.decode("latin-1")
        environ[key] = f"{environ[key]},{text}" if key in environ else text
    return environ


def request_bytes(
    method: str, target: bytes, headers: Headers, chunked: bool, length: int | None
) -> bytes:
    """A request head, framed for the body that follows (the proxy frames it itself)."""
    lines = [b"%s %s HTTP/1.1\r\n" % (method.encode("latin-1"), target)]
    lines += [b"%s: %s\r\n" % pair for pair in headers if pair[0].lower() != b"content-length"]
    if chunked:
        lines.append(b"Transfer-Encoding: chunked\r\n")
    elif length is not None:
        lines.append(b"Content-Length: %d\r\n" % length)
    lines.append(b"\r\n")
    return b"".join(lines)


def wsgi_response(status: str, headers: list[tuple[str, str]], body: bytes, close: bool) -> bytes:
    """A whole response of minibinder's own from a WSGI status line, headers and body."""
    lines = [f"HTTP/1.1 {status}\r\n".encode("latin-1")]
    lines += [
        f"{name}: {value}\r\n".encode("latin-1")
        for name, value in headers
        if name.lower() not in ("content-length", "connection")
    ]
    lines += [b"%s: %s\r\n" % pair for pair in OWN_PAGE_HEADERS]
    lines.append(b"Content-Length: %d\r\n" % len(body))
    lines.append(b"Connection: close\r\n\r\n" if close else b"\r\n")
    return b"".join(lines) + body


def simple_response(
    status: int,
    body: str | bytes,
    content_type: str = "text/plain; charset=utf-8",
    close: bool = False,
    retry_after: int = 0,
) -> bytes:
    """A small complete response the proxy gives itself (errors, refusals)."""
    data = body.encode() if isinstance(body, str) else body
    headers = [("Content-Type", content_type), ("Cache-Control", "no-store")]
    if retry_after:
        headers.append(("Retry-After", str(retry_after)))
    return wsgi_response(f"{status} {HTTPStatus(status).phrase}", headers, data, close)
