"""The front of `minibinder serve`: an asyncio server, in every worker, on each TCP listener.

Every connection is read here, by llhttp (httptools) under deadlines, so neither a slow client
nor an ambiguous request ever reaches a thread:
- a request's headers must arrive within `request_header_timeout`, its body within
  `request_body_timeout`, the next request within `idle_connection_timeout`;
- one client address holds at most `max_connections_per_client` connections per worker;
- framing llhttp finds ambiguous (Content-Length with Transfer-Encoding, two lengths, obs-fold,
  bare LF, a chunk size overflow) gets 400 and goes nowhere.

`/user/<id>/…` requests are decided by the WSGI guards (run inline: no thread, no I/O but the
route table's cached lookup) and relayed by the front itself to the session, over connections
kept alive per worker; WebSockets are piped as raw bytes once the session answered 101.
Everything else (pages, event streams, the API) goes to the Flask app under gunicorn, on a
unix socket, with the client's address in a header only the front can set (FRONT_HEADER,
signed by a key the workers share).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

import httptools
import uvloop

from ..config import Config
from .dispatch import DECIDE_ONLY, HOP, Hop, error_html
from .headers import (
    FRONT_HEADER,
    HOP_BY_HOP,
    Headers,
    forward_headers,
    header,
    response_headers,
    session_cookie,
)
from .inject import MAX_INJECT_BYTES, inject_script, injectable, is_page
from .routes import RouteTable
from .wire import RequestHead, environ_for, request_bytes, simple_response, wsgi_response

log = logging.getLogger("minibinder.front")

HEAD_LIMIT = 64 * 1024  # a request's line and headers
MAX_HEADERS = 100
QUEUE_LIMIT = 1 << 20  # bytes read ahead of the relay before reading pauses
HEAD_COST = 4096  # what a pipelined request's head counts against QUEUE_LIMIT
POOL_IDLE_SECONDS = 15.0  # under the app's and sessions' own keep-alive timeouts
CONNECT_TIMEOUT = 3.0
UPGRADE_ANSWER_SECONDS = 30.0
LISTEN_BACKLOG = 2048

WSGIApp = Callable[[dict, Callable], Any]
PageScript = Callable[[str], bytes]  # a session's path prefix → the tag added to its pages


@dataclass(frozen=True)
class Limits:
    header_timeout: float
    idle_timeout: float
    body_timeout: float
    websocket_idle_timeout: float
    connections_per_client: int  # per worker; 0: no limit
    # Trusted proxies carry many clients on one address: no cap for them.
    exempt: Callable[[str], bool] = lambda address: False

    @classmethod
    def of(cls, config: Config, exempt: Callable[[str], bool]) -> Limits:
        return cls(config.request_header_timeout, config.idle_connection_timeout,
                   config.request_body_timeout, config.websocket_idle_timeout,
                   config.max_connections_per_client, exempt)  # fmt: skip


@dataclass(frozen=True)
class Listener:
    sock: socket.socket
    admin: bool  # the operator's listener: everything goes to the app


class Closed(Exception):
    """The other end went away (or was cut off by a deadline)."""


# -- both ends: a protocol whose parser's events a coroutine consumes ------------------------


class _End(asyncio.Protocol):
    """One TCP connection with an llhttp parser. The parser's callbacks queue events; the
    relay coroutine takes them in order (so pipelined requests wait their turn) and reading
    pauses while more than QUEUE_LIMIT bytes wait. Once piped, bytes go straight across."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.events: collections.deque[tuple] = collections.deque()
        self.queued = 0
        self.waiter: asyncio.Future | None = None
        self.drained: asyncio.Future | None = None
        self.writing_paused = self.reading_paused = self.closed = False
        self.pipe: _End | None = None  # the other end, once bytes are piped raw
        self.rest = b""  # bytes after an upgrade's head, before piping starts
        self.last_data = 0.0
        self.timer: asyncio.TimerHandle | None = None

    # asyncio's side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop sets TCP_NODELAY on every TCP transport: small answers leave at once.
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.disarm()
        self._wake()
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)
        if self.pipe is not None and self.pipe.transport is not None:
            self.pipe.transport.close()

    def pause_writing(self) -> None:
        self.writing_paused = True
        if self.pipe is not None and self.pipe.transport is not None:
            self.pipe.transport.pause_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.pipe is not None and self.pipe.transport is not None:
            self.pipe.transport.resume_reading()
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self.pipe is not None:
            self.last_data = self.loop.time()
            assert self.pipe.transport is not None
            self.pipe.transport.write(data)
            return
        if self.rest or self._upgraded():
            self.rest += data
            if len(self.rest) > HEAD_LIMIT:
                self.abort()
            return
        self.feed(data)
        if self.queued > QUEUE_LIMIT and not self.reading_paused and self.transport:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake()

    # the parser's side

    def feed(self, data: bytes) -> None:
        raise NotImplementedError

    def _upgraded(self) -> bool:
        return False

    def on_body(self, body: bytes) -> None:
        self.queued += len(body)
        self.events.append(("body", body))

    def on_message_complete(self) -> None:
        self.events.append(("end",))

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    # the relay's side

    async def next_event(self) -> tuple:
        while not self.events:
            if self.closed:
                return ("lost",)
            if self.reading_paused and self.transport:
                self.reading_paused = False
                self.transport.resume_reading()
            self.waiter = self.loop.create_future()
            await self.waiter
        event = self.events.popleft()
        if event[0] == "body":
            self.queued -= len(event[1])
        elif event[0] == "head" and isinstance(event[1], RequestHead):
            self.queued -= HEAD_COST
        return event

    async def drain(self, timeout: float) -> None:
        """Wait until the transport's buffer is low again; a peer that reads nothing for
        `timeout` is cut off."""
        if self.closed:
            raise Closed()
        if not self.writing_paused:
            return
        self.drained = self.loop.create_future()
        timer = self.loop.call_later(timeout, self.abort)
        try:
            await self.drained
        finally:
            timer.cancel()
        if self.closed:
            raise Closed()

    def write(self, data: bytes) -> None:
        if self.closed or self.transport is None:
            raise Closed()
        self.transport.write(data)

    def write_chunk(self, data: bytes) -> None:
        """One piece of a chunked body."""
        if self.closed or self.transport is None:
            raise Closed()
        self.transport.writelines([b"%x\r\n" % len(data), data, b"\r\n"])

    def arm(self, seconds: float) -> None:
        self.disarm()
        self.timer = self.loop.call_later(seconds, self.abort)

    def disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def abort(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.abort()


class _Client(_End):
    """A client's connection: requests in, responses out."""

    def __init__(self, front: Front, listener: Listener):
        super().__init__(front.loop)
        self.front, self.listener = front, listener
        self.parser = httptools.HttpRequestParser(self)
        self.peer = ""
        self.port = 0
        self.scheme = "http"
        self.in_head = False
        self.head_bytes = 0
        self.upgrade_requested = False
        self.url = b""
        self.headers: Headers = []
        self.task: asyncio.Task | None = None
        self.admitted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) else ""
        local = transport.get_extra_info("sockname")
        self.port = int(local[1]) if isinstance(local, tuple) else 0
        self.scheme = "https" if transport.get_extra_info("sslcontext") else "http"
        if not self.front.admit(self):
            self.write(simple_response(429, "Too many connections from your address "
                                            "(max_connections_per_client).\n", close=True,
                                            retry_after=5))  # fmt: skip
            transport.close()
            return
        self.admitted = True
        self.arm(self.front.limits.idle_timeout)
        self.task = self.loop.create_task(self.front.serve(self))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.admitted:
            self.admitted = False
            self.front.release(self)
        super().connection_lost(exc)

    def _upgraded(self) -> bool:
        return self.upgrade_requested

    def feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self.rest = data[upgrade.args[0] :]
        except httptools.HttpParserCallbackError as error:
            self._refuse(431, str(error.__context__ or error))
        except httptools.HttpParserError as error:
            self._refuse(400, f"the request could not be read: {error}")
        if self.in_head:  # counted from the chunk the head began in
            self.head_bytes += len(data)
            if self.head_bytes > HEAD_LIMIT:
                self._refuse(431, "the request's headers are too large")

    def _refuse(self, status: int, reason: str) -> None:
        self.events.append(("error", status, reason))
        self.upgrade_requested = True  # nothing more is read from this connection
        self.in_head = False
        self.disarm()

    def on_message_begin(self) -> None:
        self.in_head, self.head_bytes = True, 0
        self.url, self.headers = b"", []
        self.arm(self.front.limits.header_timeout)

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self.headers) >= MAX_HEADERS:
            raise ValueError(f"more than {MAX_HEADERS} headers")
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.in_head = False
        parser = self.parser
        self.upgrade_requested = bool(parser.should_upgrade())
        head = RequestHead.of(
            parser.get_method().decode("latin-1"), self.url, self.headers,
            parser.get_http_version(), bool(parser.should_keep_alive()), self.upgrade_requested,
        )  # fmt: skip
        self.queued += HEAD_COST
        self.events.append(("head", head))
        if head.has_body:
            self.arm(self.front.limits.body_timeout)
        else:
            self.disarm()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if not self.in_head:
            self.disarm()

    def done_with_request(self) -> None:
        """Between requests: the next must start within the idle deadline."""
        if self.events and self.events[0][0] == "end":
            self.events.popleft()  # the end of a request without a body
        if not self.in_head and not self.events and not self.closed:
            self.arm(self.front.limits.idle_timeout)


class _Upstream(_End):
    """A connection to a session's Jupyter or to the app: responses in."""

    def __init__(self, loop: asyncio.AbstractEventLoop, target: str):
        super().__init__(loop)
        self.target = target
        self.parser = httptools.HttpResponseParser(self)
        self.reason = b""
        self.headers: Headers = []
        self.idle_since = 0.0
        self.broken = self.upgraded = self.in_message = self.until_close = False
        self.seen: bytearray | None = None  # what arrived, while a handshake is answered
        self.raw_head = b""  # the session's 101, as it sent it
        self.pool: _Pool | None = None  # while kept alive there, between requests

    def feed(self, data: bytes) -> None:
        if self.seen is not None:  # a handshake's answer goes back byte for byte
            self.seen += data
            if len(self.seen) > HEAD_LIMIT:
                self.abort()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self.rest = data[upgrade.args[0] :]
            self.upgraded = True
            if self.seen is not None:
                self.raw_head = bytes(self.seen[: len(self.seen) - len(self.rest)])
                self.seen = None
        except httptools.HttpParserError as error:
            self.broken = True
            self.events.append(("error", str(error)))  # answered as an unreachable session

    def _upgraded(self) -> bool:
        return self.upgraded or self.broken

    def on_message_begin(self) -> None:
        self.reason, self.headers = b"", []
        self.in_message = True

    def on_message_complete(self) -> None:
        self.in_message = False
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.in_message and self.until_close:  # a body that ends with the connection
            self.in_message = False
            self.events.append(("end",))
        if self.pool is not None:  # closed while kept for the next request
            self.pool.discard(self)
        super().connection_lost(exc)

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self.parser
        framed = header(self.headers, b"content-length") or header(
            self.headers, b"transfer-encoding"
        )
        self.until_close = framed is None
        self.events.append(("head", parser.get_status_code(), self.reason, self.headers,
                            bool(parser.should_keep_alive())))  # fmt: skip


class _Pool:
    """Kept-alive connections to sessions and to the app, per worker."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.idle: dict[str, list[_Upstream]] = {}

    async def get(self, target: str) -> tuple[_Upstream, bool]:
        """A connection to `target`, and whether it was kept alive from an earlier request."""
        now = self.loop.time()
        idle = self.idle.get(target)
        while idle:
            upstream = idle.pop()
            upstream.pool = None
            if now - upstream.idle_since < POOL_IDLE_SECONDS:
                return upstream, True
            upstream.abort()
        return await self.connect(target), False

    async def connect(self, target: str) -> _Upstream:
        def factory() -> _Upstream:
            return _Upstream(self.loop, target)

        if target.startswith("unix:"):
            made = self.loop.create_unix_connection(factory, target[5:])
        else:
            host, port = target.rsplit(":", 1)
            made = self.loop.create_connection(factory, host, int(port))
        _, upstream = await asyncio.wait_for(made, CONNECT_TIMEOUT)
        return upstream

    def put(self, upstream: _Upstream) -> None:
        if upstream.closed or upstream.events or upstream.broken or upstream.upgraded:
            upstream.abort()
            return
        upstream.idle_since = self.loop.time()
        upstream.pool = self
        self.idle.setdefault(upstream.target, []).append(upstream)

    def discard(self, upstream: _Upstream) -> None:
        """Forget a kept connection the other side closed (a stopped session's, too)."""
        idle = self.idle.get(upstream.target, [])
        if upstream in idle:
            idle.remove(upstream)
        if not idle:
            self.idle.pop(upstream.target, None)
        upstream.pool = None


@dataclass
class _Exchange:
    """One request on its way: where it goes and what to add on the way back."""

    head: RequestHead
    target: str
    path: bytes  # the raw target asked of the upstream
    headers: Headers
    session: str = ""  # the session's id; "" for the app
    cookie_prefix: str = ""
    banner: bytes = b""  # the tag added to the page, if it is one


class Front:
    """The asyncio server of one worker, running in a thread of its own."""

    def __init__(
        self,
        guards: WSGIApp,
        routes: RouteTable,
        app_socket: str,
        front_key: str,
        limits: Limits,
        path_prefix: str = "",
        page_script: PageScript | None = None,
    ):
        self.guards, self.routes = guards, routes
        self.app_target = f"unix:{app_socket}"
        self.front_key = front_key
        self.limits = limits
        self.session_paths = f"{path_prefix}/user/".encode()
        self.page_script = page_script
        self.loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        self.pool = _Pool(self.loop)
        self.clients: collections.Counter[str] = collections.Counter()

    # -- running ---------------------------------------------------------------------------

    def start(self, listeners: Sequence[Listener], tls: ssl.SSLContext | None) -> None:
        """Serve `listeners` from a thread of this process; raise if that cannot start."""
        ready = threading.Event()
        failed: list[BaseException] = []
        thread = threading.Thread(target=self._run, args=(listeners, tls, ready, failed),
                                  name="minibinder-front", daemon=True)  # fmt: skip
        thread.start()
        if not ready.wait(30) or failed:
            raise RuntimeError(f"the front did not start: {failed[0] if failed else 'timeout'}")

    def _run(
        self,
        listeners: Sequence[Listener],
        tls: ssl.SSLContext | None,
        ready: threading.Event,
        failed: list[BaseException],
    ) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            for listener in listeners:
                self.loop.run_until_complete(
                    self.loop.create_server(
                        lambda listener=listener: _Client(self, listener),
                        sock=listener.sock,
                        ssl=tls,
                        backlog=LISTEN_BACKLOG,
                        ssl_handshake_timeout=self.limits.header_timeout if tls else None,
                    )  # fmt: skip
                )
        except BaseException as error:
            failed.append(error)
            ready.set()
            return
        ready.set()
        self.loop.run_forever()

    def admit(self, client: _Client) -> bool:
        cap = self.limits.connections_per_client
        if cap and self.clients[client.peer] >= cap and not self.limits.exempt(client.peer):
            return False
        self.clients[client.peer] += 1
        return True

    def release(self, client: _Client) -> None:
        self.clients[client.peer] -= 1
        if self.clients[client.peer] <= 0:
            del self.clients[client.peer]

    # -- one connection ----------------------------------------------------------------------

    async def serve(self, client: _Client) -> None:
        try:
            while True:
                event = await client.next_event()
                if event[0] == "head":
                    if not await self._exchange(client, event[1]):
                        break
                    client.done_with_request()
                    continue
                if event[0] == "end":  # of a request without a body
                    continue
                if event[0] == "error":
                    client.write(simple_response(event[1], event[2] + "\n", close=True))
                break
        except Closed:
            pass
        except Exception:  # a bug here must not take the worker's front down
            log.exception("the front failed on a request")
        finally:
            if client.transport is not None and not client.closed:
                client.transport.close()

    async def _exchange(self, client: _Client, head: RequestHead) -> bool:
        """Answer one request; False when the connection is to close afterwards."""
        if not head.target.startswith(b"/"):
            client.write(simple_response(400, "Only origin-form request targets are served.\n",
                                         close=True))  # fmt: skip
            return False
        exchange: _Exchange | None = None
        path = unquote_to_bytes(head.target) if b"%" in head.target else head.target
        if not client.listener.admin and path.startswith(self.session_paths):
            decided = self._decide(client, head)
            if isinstance(decided, bytes):
                client.write(decided)
                return await self._skip_body(client) and head.keep_alive and not head.upgrade
            exchange = decided
        if exchange is None:
            exchange = self._to_app(client, head)
        if head.upgrade:
            if exchange.session and head.websocket:
                await self._websocket(client, exchange)
                return False
            exchange.headers = [(n, v) for n, v in exchange.headers if n.lower() != b"upgrade"]
        return await self._relay(client, exchange)

    def _decide(self, client: _Client, head: RequestHead) -> _Exchange | bytes | None:
        """Run the WSGI guards on the request: a session's exchange, a response they gave
        (bytes), or None (for the app to answer)."""
        environ = environ_for(head, client.peer, client.port, client.scheme)
        environ[DECIDE_ONLY] = True
        answered: list = []

        def start_response(status: str, headers: list, exc_info: Any = None) -> Callable:
            answered[:] = [status, headers]
            return lambda data: None

        body = self.guards(environ, start_response)
        try:
            if answered:
                return wsgi_response(answered[0], answered[1], b"".join(body),
                                     close=not head.keep_alive or head.upgrade)  # fmt: skip
        finally:
            if hasattr(body, "close"):
                body.close()
        hop: Hop | None = environ.get(HOP)
        if hop is None:
            return None
        prefix = f"{environ.get('SCRIPT_NAME', '')}/user/{hop.session_id}/"
        banner = b""
        if (
            self.page_script
            and head.method == "GET"
            and is_page(hop.raw_path[len(environ.get("SCRIPT_NAME", "")) :])
        ):
            banner = self.page_script(prefix)
        headers = forward_headers(head.headers, environ.get("REMOTE_ADDR", client.peer),
                                  environ.get("wsgi.url_scheme", client.scheme),
                                  upgrade=head.upgrade)  # fmt: skip
        return _Exchange(head, hop.target, hop.raw_path.encode("latin-1"), headers,
                         hop.session_id, prefix, banner)  # fmt: skip

    def _to_app(self, client: _Client, head: RequestHead) -> _Exchange:
        said = (f"key={self.front_key}; for={client.peer}; proto={client.scheme}; "
                f"port={client.port}").encode()  # fmt: skip
        dropped = HOP_BY_HOP | {b"expect", FRONT_HEADER}
        headers = [(n, v) for n, v in head.headers if n.lower() not in dropped]
        headers.append((b"X-Minibinder-Front", said))
        return _Exchange(head, self.app_target, head.target, headers)

    async def _skip_body(self, client: _Client) -> bool:
        """Read and drop the body of a request answered without it."""
        while True:
            event = await client.next_event()
            if event[0] == "end":
                return True
            if event[0] != "body":
                return False

    # -- HTTP ------------------------------------------------------------------------------

    async def _relay(self, client: _Client, exchange: _Exchange) -> bool:
        try:
            upstream, reused = await self.pool.get(exchange.target)
        except (TimeoutError, OSError):
            return self._unreachable(client, exchange)
        try:
            return await self._exchange_with(client, upstream, reused, exchange)
        except BaseException:
            upstream.abort()  # it saw part of an exchange: never reused
            raise

    async def _exchange_with(
        self, client: _Client, upstream: _Upstream, reused: bool, exchange: _Exchange
    ) -> bool:
        head = exchange.head
        sent = request_bytes(head.method, exchange.path, exchange.headers, head.chunked,
                             head.length)  # fmt: skip
        upstream.write(sent)
        if head.expects_continue and head.has_body:
            client.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if head.has_body and not await self._send_body(client, upstream, head.chunked):
            upstream.abort()
            if not client.closed:
                client.write(simple_response(400, "The request body could not be read.\n",
                                             close=True))  # fmt: skip
            return False
        event = await upstream.next_event()
        if event[0] != "head" and reused and not head.has_body and upstream.closed:
            # A kept-alive connection the other side had closed: once more on a new one.
            try:
                upstream = await self.pool.connect(exchange.target)
            except (TimeoutError, OSError):
                return self._unreachable(client, exchange)
            try:
                upstream.write(sent)
                event = await upstream.next_event()
            except BaseException:
                upstream.abort()
                raise
        # Interim answers (103 Early Hints; 100 Continue, though Expect is not passed on) are
        # dropped: the real answer follows on the same connection.
        while event[0] in ("head", "end") and (event[0] == "end" or 100 <= event[1] < 200):
            event = await upstream.next_event()
        if event[0] != "head":
            upstream.abort()
            return self._unreachable(client, exchange)
        try:
            return await self._respond(client, upstream, exchange, event)
        except BaseException:
            upstream.abort()
            raise

    def _unreachable(self, client: _Client, exchange: _Exchange) -> bool:
        if exchange.session:
            body = error_html("The session is not answering", "It may have just been stopped, "
                              "or it is overloaded. Try again in a moment, or launch the "
                              "repository again.")  # fmt: skip
        else:
            body = error_html("minibinder is restarting", "Try again in a moment.")
        client.write(simple_response(503, body, content_type="text/html; charset=utf-8",
                                     close=not exchange.head.keep_alive))  # fmt: skip
        return exchange.head.keep_alive and not exchange.head.has_body

    async def _send_body(self, client: _Client, upstream: _Upstream, chunked: bool) -> bool:
        """The client's body to the upstream, framed as it came; False when it broke off."""
        while True:
            event = await client.next_event()
            kind = event[0]
            if kind == "body":
                data = event[1]
                if chunked:
                    upstream.write_chunk(data)
                else:
                    upstream.write(data)
                await upstream.drain(self.limits.body_timeout)
            elif kind == "end":
                if chunked:
                    upstream.write(b"0\r\n\r\n")
                return True
            else:
                return False

    async def _respond(
        self, client: _Client, upstream: _Upstream, exchange: _Exchange, event: tuple
    ) -> bool:
        _, status, reason, raw_headers, upstream_keeps = event
        head = exchange.head
        headers = response_headers(raw_headers)
        if exchange.session:
            if status < 300:
                self._touch(exchange.session)
            headers = [(n, v) for n, v in headers if n.lower() != b"set-cookie"
                       or session_cookie(v.decode("latin-1"), exchange.cookie_prefix)]  # fmt: skip
        bodiless = head.method == "HEAD" or status in (204, 304) or 100 <= status < 200
        length = header(raw_headers, b"content-length")
        keep = head.keep_alive and not head.upgrade
        if exchange.banner and status == 200 and injectable(raw_headers):
            page, whole = await _read_up_to(upstream, MAX_INJECT_BYTES)
            if whole:
                body = inject_script(page, exchange.banner)
                headers = [(n, v) for n, v in headers if n.lower() != b"content-length"]
                headers.append((b"Content-Length", b"%d" % len(body)))
                client.write(_head(status, reason, headers, keep) + body)
                self._release(upstream, upstream_keeps)
                return keep
            first = page
        else:
            first = b""
        if bodiless:
            client.write(_head(status, reason, headers, keep))
            # A HEAD's answer names a length it does not send: that parser is done with.
            if head.method == "HEAD":
                upstream.abort()
            else:
                self._release(upstream, upstream_keeps)
            return keep
        chunked = length is None
        if chunked and head.version == "1.0":
            keep = False  # an HTTP/1.0 client reads to the end of the connection
            chunked = False
        if chunked:
            headers.append((b"Transfer-Encoding", b"chunked"))
        client.write(_head(status, reason, headers, keep))
        complete = await self._stream(client, upstream, first, chunked)
        if not complete:
            upstream.abort()
            return False
        self._release(upstream, upstream_keeps)
        return keep

    async def _stream(
        self, client: _Client, upstream: _Upstream, first: bytes, chunked: bool
    ) -> bool:
        pending = [first] if first else []
        while True:
            for data in pending:
                if chunked:
                    client.write_chunk(data)
                else:
                    client.write(data)
            pending = []
            await client.drain(self.limits.idle_timeout)
            event = await upstream.next_event()
            if event[0] == "body":
                pending.append(event[1])
                while upstream.events and upstream.events[0][0] == "body":
                    pending.append((await upstream.next_event())[1])
            elif event[0] == "end":
                if chunked:
                    client.write(b"0\r\n\r\n")
                return True
            else:
                # The upstream ended early: the client must not take this for the whole body.
                client.abort()
                return False

    def _release(self, upstream: _Upstream, keeps: bool) -> None:
        if keeps:
            self.pool.put(upstream)
        else:
            upstream.abort()

    def _touch(self, session_id: str) -> None:
        if self.routes.note(session_id):
            self.loop.run_in_executor(None, self.routes.flush)

    # -- WebSocket -------------------------------------------------------------------------

    async def _websocket(self, client: _Client, exchange: _Exchange) -> None:
        """Nothing of the client's goes on until the session has agreed to the upgrade: a
        refusal (a wrong token: 403) is handed back and both sides are closed."""
        try:
            upstream = await self.pool.connect(exchange.target)
        except (TimeoutError, OSError):
            self._unreachable(client, exchange)
            return
        try:
            await self._handshake(client, upstream, exchange)
        finally:
            upstream.abort()

    async def _handshake(self, client: _Client, upstream: _Upstream, exchange: _Exchange) -> None:
        head = exchange.head
        upstream.seen = bytearray()
        upstream.write(request_bytes(head.method, exchange.path, exchange.headers, False, None))
        timer = self.loop.call_later(UPGRADE_ANSWER_SECONDS, upstream.abort)
        try:
            event = await upstream.next_event()
        finally:
            timer.cancel()
        if event[0] != "head":
            client.write(simple_response(502, "The session did not answer the WebSocket "
                                         "handshake.\n", close=True))  # fmt: skip
            return
        _, status, reason, headers, _ = event
        if status != 101 or not upstream.raw_head:
            page, _ = await _read_up_to(upstream, HEAD_LIMIT)
            kept = [(n, v) for n, v in response_headers(headers) if n.lower() != b"content-length"]
            kept.append((b"Content-Length", b"%d" % len(page)))
            client.write(_head(status, reason, kept, False) + page)
            return
        self._touch(exchange.session)
        client.write(upstream.raw_head)
        await self._pipe(client, upstream, exchange.session)

    async def _pipe(self, client: _Client, upstream: _Upstream, session_id: str) -> None:
        """Raw bytes both ways until either side closes or both are silent too long."""
        done = self.loop.create_future()
        client.pipe, upstream.pipe = upstream, client
        client.last_data = upstream.last_data = self.loop.time()
        for end in (client, upstream):
            if end.rest:
                end.pipe.write(end.rest)  # type: ignore[union-attr]
                end.rest = b""
        limit = self.limits.websocket_idle_timeout
        touched = 0.0

        def check() -> None:
            nonlocal touched
            if client.closed or upstream.closed:
                if not done.done():
                    done.set_result(None)
                return
            last = max(client.last_data, upstream.last_data)
            if last > touched:  # kernel traffic is activity, noted once a second at most
                touched = last
                self._touch(session_id)
            if self.loop.time() - last >= limit:
                client.abort()
                upstream.abort()
            self.loop.call_later(min(limit, 1.0), check)

        check()
        await done


def _head(status: int, reason: bytes, headers: Headers, keep: bool) -> bytes:
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason or b"-")]
    lines += [b"%s: %s\r\n" % pair for pair in headers]
    lines.append(b"Connection: keep-alive\r\n\r\n" if keep else b"Connection: close\r\n\r\n")
    return b"".join(lines)


async def _read_up_to(upstream: _Upstream, limit: int) -> tuple[bytes, bool]:
    """Up to `limit` bytes (a little more: whole pieces) of a response body, and whether that
    was all of it."""
    parts: list[bytes] = []
    size = 0
    while size <= limit:
        event = await upstream.next_event()
        if event[0] == "end":
            return b"".join(parts), True
        if event[0] != "body":
            raise Closed()
        parts.append(event[1])
        size += len(event[1])
    return b"".join(parts), False


def bind_listener(address: str) -> socket.socket:
    """A listening socket for `host:port` (`[v6]:port` too), made before workers fork."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(sock.close)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, int(port)))
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
        cleanup.pop_all()
    return sock
