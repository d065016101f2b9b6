"""Reverse proxy in front of the Flask app: `/user/<id>/…` is relayed to that session's Jupyter.

HTTP bodies stream both ways; WebSockets are relayed as raw bytes after forwarding the
client's handshake (Jupyter negotiates subprotocols and compression itself).
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import selectors
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from html import escape
from typing import Any, NamedTuple

from ..wsgi import StartResponse, reply
from .headers import forward_headers, raw_request_path, response_headers, session_cookie
from .inject import MAX_INJECT_BYTES, inject_script, injectable, is_page
from .routes import BadRoute, RouteTable, split_route

CHUNK = 64 * 1024
CONNECT_TIMEOUT = 3.0

SessionHelper = Callable[[dict, StartResponse, str, str], Iterable[bytes]]
PageScript = Callable[[str], bytes]  # a session's path prefix → the tag added to its pages


def error_page(start_response: StartResponse, status: str, title: str, detail: str) -> list[bytes]:
    body = (
        f"<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport "
        f"content='width=device-width,initial-scale=1'><title>{escape(title)}</title>"
        f"<body style='font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;"
        f"padding:0 1rem'><h1>{escape(title)}</h1><p>{escape(detail)}</p>"
        f"<p><a href='/'>Launch a repository</a></p></body></html>"
    ).encode()
    return reply(start_response, status, "text/html; charset=utf-8", body)


class BadClientBody(Exception):
    """The client's request body could not be read (a malformed chunk, a body that ended
    early): the client's fault, answered with 400."""


def _read_client_body(body: Any) -> bytes:
    try:
        return body.read(CHUNK)
    except Exception as error:  # gunicorn's parse errors, OverflowError, ValueError
        reason = f"the request body could not be read ({type(error).__name__})"
        raise BadClientBody(reason) from None


class Hop(NamedTuple):
    """Where one request goes: the session, its backend, the raw path to ask for."""

    session_id: str
    target: str
    raw_path: str


class _Pool(threading.local):
    """Keep-alive connections to sessions, one set per thread."""

    def __init__(self) -> None:
        self.connections: dict[str, http.client.HTTPConnection] = {}


class ProxyMiddleware:
    """WSGI middleware: `/user/<id>/…` goes to the session, everything else to `app`.

    `helper` answers `/user/<id>/<helper_path>…` itself (minibinder's own pages inside a
    session); `page_script` is added to the session's HTML pages.
    """

    def __init__(
        self,
        app: Callable,
        routes: RouteTable,
        helper: SessionHelper | None = None,
        helper_path: str = "",
        page_script: PageScript | None = None,
    ):
        self.app, self.routes = app, routes
        self.helper, self.helper_path, self.page_script = helper, helper_path, page_script
        self._pool = _Pool()

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        if not environ.get("PATH_INFO", "").startswith("/user/"):
            return self.app(environ, start_response)
        raw_path = raw_request_path(environ)
        try:
            route = split_route(raw_path)
        except BadRoute as error:
            return error_page(start_response, "400 Bad Request", "Bad path", str(error))
        target = self.routes.lookup(route[0]) if route else None
        if route is None or target is None:
            return error_page(
                start_response,
                "404 Not Found",
                "No session here",
                "This session has ended or never existed. Sessions stop after a "
                "while without activity; launch the repository again.",
            )
        session_id = route[0]
        inside = raw_path.split("?", 1)[0][len(f"/user/{session_id}/") :]
        if self.helper and self.helper_path and inside.startswith(self.helper_path):
            return self.helper(environ, start_response, session_id, inside[len(self.helper_path) :])
        # The session is served under the same root as minibinder (SCRIPT_NAME: a path prefix).
        hop = Hop(session_id, target, environ.get("SCRIPT_NAME", "") + raw_path)
        if environ.get("HTTP_UPGRADE", "").lower() == "websocket":
            return self._relay_websocket(environ, start_response, hop)
        return self._relay_http(environ, start_response, hop)

    # -- HTTP --------------------------------------------------------------------------------

    def _connection(self, target: str) -> http.client.HTTPConnection:
        """A kept-alive connection to `target`, taken out of the pool (it goes back only once
        its response was read to the end), or a new one."""
        connection = self._pool.connections.pop(target, None)
        if connection is None:
            host, port = target.rsplit(":", 1)
            connection = http.client.HTTPConnection(host, int(port), timeout=CONNECT_TIMEOUT)
        return connection

    def _send(
        self, environ: dict, connection: http.client.HTTPConnection, raw_path: str
    ) -> http.client.HTTPResponse:
        if connection.sock is None:
            connection.connect()
        connection.sock.settimeout(None)  # a session may think for a long time
        method = environ["REQUEST_METHOD"]
        connection.putrequest(method, raw_path, skip_host=True, skip_accept_encoding=True)
        for name, value in forward_headers(environ):
            connection.putheader(name, value)
        body = environ.get("wsgi.input")
        length = environ.get("CONTENT_LENGTH") or ""
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked:
            connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        if body is not None and (chunked or (length.isdigit() and int(length) > 0)):
            while chunk := _read_client_body(body):
                connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            if chunked:
                connection.send(b"0\r\n\r\n")
        return connection.getresponse()

    def _relay_http(
        self, environ: dict, start_response: StartResponse, hop: Hop
    ) -> Iterable[bytes]:
        session_id, target, raw_path = hop
        reused = target in self._pool.connections
        connection = self._connection(target)
        try:
            try:
                upstream = self._send(environ, connection, raw_path)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                has_body = (environ.get("CONTENT_LENGTH") or "0") not in (
                    "",
                    "0",
                ) or "HTTP_TRANSFER_ENCODING" in environ
                if not reused or has_body:
                    raise
                # A kept-alive connection the session had closed: retry once on a new one.
                connection.close()
                connection = self._connection(target)
                upstream = self._send(environ, connection, raw_path)
        except BadClientBody as error:
            connection.close()  # the session saw part of a request: never reuse it
            return error_page(start_response, "400 Bad Request", "Bad request body", str(error))
        except OSError:
            connection.close()
            return error_page(
                start_response,
                "503 Service Unavailable",
                "The session is not answering",
                "It may have just been stopped, or it is overloaded. Try again "
                "in a moment, or launch the repository again.",
            )
        if upstream.status < 300:
            self.routes.touch(session_id)
        prefix = f"{environ.get('SCRIPT_NAME', '')}/user/{session_id}/"
        headers = [(name, value) for name, value in response_headers(upstream)
                   if name.lower() != "set-cookie" or session_cookie(value, prefix)]  # fmt: skip
        if (
            self.page_script
            and upstream.status == 200
            and environ["REQUEST_METHOD"] == "GET"
            and is_page(raw_path[len(environ.get("SCRIPT_NAME", "")) :])
            and injectable(upstream)
        ):
            stream = self._stream(upstream, connection, target)
            # At most MAX_INJECT_BYTES are held: a larger page (one without a Content-Length
            # may be any size) streams through untouched.
            page, whole = _read_up_to(stream, MAX_INJECT_BYTES)
            start = f"{upstream.status} {upstream.reason}"
            if not whole:
                start_response(start, headers)
                return itertools.chain([page], stream)
            body = inject_script(page, self.page_script(prefix))
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            start_response(start, [*headers, ("Content-Length", str(len(body)))])
            return [body]
        start_response(f"{upstream.status} {upstream.reason}", headers)
        return self._stream(upstream, connection, target)

    def _stream(
        self,
        upstream: http.client.HTTPResponse,
        connection: http.client.HTTPConnection,
        target: str,
    ) -> Iterator[bytes]:
        complete = False
        try:
            while chunk := upstream.read1(CHUNK):
                yield chunk
            complete = True
        finally:
            # read1 does not mark a fully read response closed; the connection needs that
            # before it can carry the next request.
            upstream.close()
            if complete and not upstream.will_close:
                self._pool.connections[target] = connection  # back in the pool
            else:
                connection.close()

    # -- WebSocket ---------------------------------------------------------------------------

    def _relay_websocket(
        self, environ: dict, start_response: StartResponse, hop: Hop
    ) -> Iterable[bytes]:
        session_id, target, raw_path = hop
        client = environ.get("gunicorn.socket")
        if client is None:
            return error_page(
                start_response,
                "501 Not Implemented",
                "WebSockets unavailable",
                "Run minibinder with `minibinder serve` (gunicorn) for WebSockets.",
            )
        host, port = target.rsplit(":", 1)
        try:
            upstream = socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT)
        except OSError:
            return error_page(
                start_response,
                "503 Service Unavailable",
                "The session is not answering",
                "Launch the repository again.",
            )
        upstream.settimeout(None)
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        lines = [f"{environ['REQUEST_METHOD']} {raw_path} HTTP/1.1"]
        lines += [f"{name}: {value}" for name, value in forward_headers(environ, upgrade=True)]
        try:
            upstream.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            client.settimeout(None)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # Nothing of the client's goes on until the session has agreed to the upgrade: a
            # refusal (a wrong token: 403) is handed back and both sides are closed.
            status, answer = _upgrade_answer(upstream)
            client.sendall(answer)
            if status == 101:
                self.routes.touch(session_id)
                _pump(client, upstream, lambda: self.routes.touch(session_id))
        except OSError:
            pass
        finally:
            upstream.close()
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
        # The connection now belongs to neither HTTP nor the app: gunicorn closes it quietly.
        raise StopIteration("websocket closed")


def _read_up_to(stream: Iterator[bytes], limit: int) -> tuple[bytes, bool]:
    """Up to `limit` bytes (a little more: whole chunks) of `stream`, and whether that was all."""
    parts, size = [], 0
    for chunk in stream:
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(parts), False
    return b"".join(parts), True


UPGRADE_HEAD_LIMIT = 64 * 1024
UPGRADE_ANSWER_SECONDS = 30.0


def _upgrade_answer(upstream: socket.socket) -> tuple[int, bytes]:
    """The session's answer to a WebSocket handshake: (status, bytes to hand to the client).
    A 101 comes with whatever followed it; any other answer with its body (Content-Length,
    bounded); 502 when the session says nothing sensible in time."""
    upstream.settimeout(UPGRADE_ANSWER_SECONDS)
    data = b""
    try:
        while b"\r\n\r\n" not in data and len(data) < UPGRADE_HEAD_LIMIT:
            chunk = upstream.recv(CHUNK)
            if not chunk:
                break
            data += chunk
        head, separator, rest = data.partition(b"\r\n\r\n")
        status = _status_of(head) if separator else 0
        if status and status != 101:
            length = _content_length(head)
            while len(rest) < min(length, UPGRADE_HEAD_LIMIT):
                chunk = upstream.recv(CHUNK)
                if not chunk:
                    break
                rest += chunk
    except OSError:
        status = 0
    finally:
        upstream.settimeout(None)
    if not status:
        body = b"The session did not answer the WebSocket handshake.\n"
        return 502, (b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nConnection: "
                     b"close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))  # fmt: skip
    return status, data if status == 101 else head + separator + rest[:UPGRADE_HEAD_LIMIT]


def _status_of(head: bytes) -> int:
    parts = head.split(b"\r\n", 1)[0].split(b" ", 2)
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return int(value.strip())
    return 0


def _pump(client: socket.socket, upstream: socket.socket, on_data: Callable[[], None]) -> None:
    """Copy bytes both ways until either side closes."""
    peers = {client: upstream, upstream: client}
    with selectors.DefaultSelector() as selector:
        for sock in peers:
            selector.register(sock, selectors.EVENT_READ, sock)
        while True:
            for key, _ in selector.select():
                source: socket.socket = key.data
                try:
                    data = source.recv(CHUNK)
                    if not data:
                        return
                    peers[source].sendall(data)
                except OSError:
                    return
                on_data()
