"""The front of `minibinder serve`: an asyncio server, in every worker, on each TCP listener.

Every request is read once, here, by llhttp (httptools) in its strict mode, under deadlines;
nothing the client sent is ever handed to a second HTTP parser:
- a request's headers must arrive within `request_header_timeout`, its body within
  `request_body_timeout`, the next request within `idle_connection_timeout`;
- one client address holds at most `max_connections_per_client` connections per worker;
- framing llhttp finds ambiguous (Content-Length with Transfer-Encoding, two lengths, obs-fold,
  bare LF, a malformed chunk) and any Transfer-Encoding but exactly `chunked` get 400;
- a body is read before a thread or an upstream connection is taken for it.

`/user/<id>/…` requests are decided by the WSGI guards (run inline: no thread, no I/O but the
route table's cached lookup) and relayed by the front itself to the session, written anew in
one framing, over connections kept alive per worker; WebSockets are piped as raw bytes once the
session answered 101. Everything else (pages, event streams, the API) is answered by the WSGI
app in a bounded pool of threads (app_calls.py), given the parsed request.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import ssl
import threading
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import unquote_to_bytes

import httptools
import uvloop

from .app_calls import AccessLog, AppCalls, Busy, WSGIApp, app_environ
from .connection import HEAD_COST, HEAD_LIMIT, Body, Closed, Connection, End, Failed, Limits
from .dispatch import DECIDE_ONLY, HOP, Hop
from .headers import Headers, forward_headers, header
from .inject import is_page
from .listeners import LISTEN_BACKLOG, Listener
from .routes import RouteTable
from .session_relay import Exchange, SessionRelay
from .tls_accept import TlsAcceptor
from .upstream import UpstreamPool
from .wire import CLIENT_GONE, RequestHead, environ_for, simple_response, wsgi_response

log = logging.getLogger("minibinder.front")

MAX_HEADERS = 100
MAX_PAGE_BODY = 1 << 20  # minibinder's own pages take small forms only
APP_WAIT_SECONDS = 30.0  # for a thread, when all of them are busy
TICK_SECONDS = 1.0

PageScript = Callable[[str], bytes]  # a session's path prefix → the tag added to its pages
ClientKey = Callable[[str, Headers], str]  # (peer, headers) → who is asking


class ClientConnection(Connection):
    """A client's connection: requests in, responses out. It knows its deadlines and two
    callbacks: `admit` (may this connection stay?) and `serve` (the coroutine answering it);
    `release` is called once an admitted connection closes."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        listener: Listener,
        limits: Limits,
        admit: Callable[[ClientConnection], bool],
        release: Callable[[ClientConnection], None],
        serve: Callable[[ClientConnection], Any],
    ):
        super().__init__(loop)
        self.listener, self.limits = listener, limits
        self._admit, self._release, self._serve = admit, release, serve
        self.parser = httptools.HttpRequestParser(self)
        self.peer = ""
        self.port = 0
        self.scheme = "http"
        self.in_head = False
        self.head_bytes = self.head_parsed = 0
        self.stopped = False  # after an upgrade or an error nothing more is parsed
        self.url = b""
        self.headers: Headers = []
        self.task: asyncio.Task | None = None
        self.admitted = False
        self.gone = threading.Event()  # set when the connection closes (read by app threads)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) else ""
        local = transport.get_extra_info("sockname")
        self.port = int(local[1]) if isinstance(local, tuple) else 0
        self.scheme = "https" if transport.get_extra_info("sslcontext") else "http"
        if not self._admit(self):
            self.write(
                simple_response(
                    429,
                    "Too many connections from your address (max_connections_per_client).\n",
                    close=True,
                    retry_after=5,
                )
            )
            transport.close()
            return
        self.admitted = True
        self.arm(self.limits.idle_timeout)
        self.task = self.loop.create_task(self._serve(self))

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone.set()
        if self.admitted:
            self.admitted = False
            self._release(self)
        super().connection_lost(exc)

    def parsing_stopped(self) -> bool:
        return self.stopped

    def feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self.rest = data[upgrade.args[0] :]
            self.stopped = True
        except httptools.HttpParserCallbackError as error:
            self.refuse(431, str(error.__context__ or error))
        except httptools.HttpParserError as error:
            self.refuse(400, f"the request could not be read: {error}")
        if self.in_head:  # counted from the chunk the head began in
            self.head_bytes += len(data)
            if self.head_bytes > HEAD_LIMIT:
                self.refuse(431, "the request's headers are too large")

    def refuse(self, status: int, reason: str) -> None:
        if self.stopped:
            return
        self.fail(status, reason)
        self.stopped = True
        self.in_head = False
        self.disarm()

    def on_message_begin(self) -> None:
        self.in_head, self.head_bytes, self.head_parsed = True, 0, 0
        self.url, self.headers = b"", []
        self.arm(self.limits.header_timeout)

    def on_url(self, url: bytes) -> None:
        self.url += url
        self._count(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self.headers) >= MAX_HEADERS:
            raise ValueError(f"more than {MAX_HEADERS} headers")
        self.headers.append((name, value))
        self._count(len(name) + len(value) + 4)

    def _count(self, size: int) -> None:
        """A head read in one piece is measured here; one that trickles in, in feed()."""
        self.head_parsed += size
        if self.head_parsed > HEAD_LIMIT:
            raise ValueError("the request's headers are too large")

    def on_headers_complete(self) -> None:
        self.in_head = False
        parser = self.parser
        head = RequestHead.of(
            parser.get_method().decode("latin-1"),
            self.url,
            self.headers,
            parser.get_http_version(),
            bool(parser.should_keep_alive()),
            bool(parser.should_upgrade()),
        )
        self.queued += HEAD_COST
        self.events.append(head)
        if head.has_body:
            self.arm(self.limits.body_timeout)
        else:
            self.disarm()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if not self.in_head:
            self.disarm()

    def between_requests(self) -> None:
        """The next request must start within the idle deadline."""
        if self.events and isinstance(self.events[0], End):
            self.events.popleft()  # the end of a request without a body
            self.ends -= 1
        if not self.in_head and not self.events and not self.closed:
            self.arm(self.limits.idle_timeout)


class Front:
    """The asyncio server of one worker, running in a thread of its own."""

    def __init__(
        self,
        app: WSGIApp,
        routes: RouteTable,
        limits: Limits,
        threads: int,
        path_prefix: str = "",
        page_script: PageScript | None = None,
        client_key: ClientKey | None = None,
        access_log: AccessLog | None = None,
        on_tick: Callable[[int, int, int], None] | None = None,
    ):
        """`app` is the whole WSGI app, guards included: run inline (decide only) for session
        requests, in a thread for everything else."""
        self.app, self.routes = app, routes
        self.limits = limits
        self.session_paths = f"{path_prefix}/user/".encode()
        self.page_script = page_script
        self.client_key = client_key or (lambda peer, headers: peer)
        self.on_tick = on_tick
        self.loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        self.pool = UpstreamPool(self.loop)
        self.relay = SessionRelay(self.loop, self.pool, limits, self._touch)
        self.app_calls = AppCalls(app, self.loop, threads, limits.idle_timeout, access_log)
        self.clients: collections.Counter[str] = collections.Counter()
        self.in_app: collections.Counter[str] = collections.Counter()
        self.servers: list[asyncio.AbstractServer | TlsAcceptor] = []

    # -- running ---------------------------------------------------------------------------

    def start(self, listeners: Sequence[Listener], tls: ssl.SSLContext | None) -> None:
        """Serve `listeners` from a thread of this process; raise if that cannot start."""
        ready = threading.Event()
        failed: list[BaseException] = []
        thread = threading.Thread(
            target=self._run,
            args=(listeners, tls, ready, failed),
            name="minibinder-front",
            daemon=True,
        )
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

                def connection(listener: Listener = listener) -> ClientConnection:
                    return ClientConnection(
                        self.loop, listener, self.limits, self.admit, self.release, self.serve
                    )

                if tls is not None:  # plain HTTP to it gets a hint, not an empty reply
                    acceptor = TlsAcceptor(
                        self.loop, listener.sock, connection, tls, self.limits.header_timeout
                    )
                    acceptor.start()
                    self.servers.append(acceptor)
                    continue
                self.servers.append(
                    self.loop.run_until_complete(
                        self.loop.create_server(
                            connection, sock=listener.sock, backlog=LISTEN_BACKLOG
                        )
                    )
                )
        except BaseException as error:
            failed.append(error)
            ready.set()
            return
        self.loop.call_soon(self._tick)
        ready.set()
        self.loop.run_forever()

    def stop(self) -> None:
        """Stop accepting connections (the worker is leaving); requests in flight go on."""

        def close() -> None:
            for server in self.servers:
                server.close()

        self.loop.call_soon_threadsafe(close)

    def busy(self) -> int:
        """Requests inside the app now."""
        return self.app_calls.busy

    def _tick(self) -> None:
        self.pool.sweep()
        if self.on_tick is not None:
            try:
                self.on_tick(self.app_calls.busy, len(self.pool.open), sum(self.clients.values()))
            except Exception:
                log.exception("the front's tick failed")
        self.loop.call_later(TICK_SECONDS, self._tick)

    def admit(self, client: ClientConnection) -> bool:
        cap = self.limits.connections_per_client
        if cap and self.clients[client.peer] >= cap and not self.limits.exempt(client.peer):
            return False
        self.clients[client.peer] += 1
        return True

    def release(self, client: ClientConnection) -> None:
        self.clients[client.peer] -= 1
        if self.clients[client.peer] <= 0:
            del self.clients[client.peer]

    # -- one connection ----------------------------------------------------------------------

    async def serve(self, client: ClientConnection) -> None:
        try:
            while True:
                event = await client.next_event()
                if isinstance(event, RequestHead):
                    if not await self._answer(client, event):
                        break
                    client.between_requests()
                    continue
                if isinstance(event, End):  # of a request without a body
                    continue
                if isinstance(event, Failed):
                    client.write(simple_response(event.status, event.reason + "\n", close=True))
                break  # lost, or anything irregular: the connection is not used again
        except Closed:
            pass
        except Exception:  # a bug here must not take the worker's front down
            log.exception("the front failed on a request")
        finally:
            if client.transport is not None and not client.closed:
                client.transport.close()

    async def _answer(self, client: ClientConnection, head: RequestHead) -> bool:
        """Answer one request; False when the connection is to close afterwards."""
        problem = _framing_problem(head)
        if problem:
            client.write(simple_response(400, problem + "\n", close=True))
            return False
        path = unquote_to_bytes(head.target) if b"%" in head.target else head.target
        if not client.listener.admin and path.startswith(self.session_paths):
            decided = self._decide(client, head)
            if isinstance(decided, bytes):
                client.write(decided)
                # A refused request's body is not read: the connection goes.
                return head.keep_alive and not head.upgrade and not head.has_body
            if decided is not None:
                if head.upgrade and head.websocket:
                    await self.relay.websocket(client, decided)
                    return False
                return await self.relay.http(client, decided)
        return await self._call_app(client, head)

    def _decide(self, client: ClientConnection, head: RequestHead) -> Exchange | bytes | None:
        """Run the WSGI guards on the request: a session's exchange, a response they gave
        (bytes), or None (for the app to answer)."""
        environ = environ_for(head, client.peer, client.port, client.scheme)
        environ[DECIDE_ONLY] = True
        answered: list = []

        def start_response(status: str, headers: list, exc_info: Any = None) -> Callable:
            answered[:] = [status, headers]
            return lambda data: None

        body = self.app(environ, start_response)
        try:
            if answered:
                return wsgi_response(
                    answered[0],
                    answered[1],
                    b"".join(body),
                    close=not head.keep_alive or head.upgrade or head.has_body,
                )
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
        websocket = head.upgrade and head.websocket
        headers = forward_headers(
            head.headers,
            environ.get("REMOTE_ADDR", client.peer),
            environ.get("wsgi.url_scheme", client.scheme),
            upgrade=websocket,
        )
        return Exchange(
            head,
            hop.target,
            hop.raw_path.encode("latin-1"),
            headers,
            hop.session_id,
            prefix,
            banner,
        )

    # -- minibinder's own pages ----------------------------------------------------------------

    async def _call_app(self, client: ClientConnection, head: RequestHead) -> bool:
        body = b""
        if head.has_body:
            if head.length is not None and head.length > MAX_PAGE_BODY:
                client.write(
                    simple_response(413, "minibinder's pages take at most 1 MiB.\n", close=True)
                )
                return False
            if head.expects_continue:
                client.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            read = await _read_body(client, MAX_PAGE_BODY)
            if isinstance(read, Failed):
                if not client.closed:
                    client.write(simple_response(read.status, read.reason + "\n", close=True))
                return False
            body = read
        key = self.client_key(client.peer, head.headers)
        cap = self.limits.page_requests_per_client
        if cap and self.in_app[key] >= cap:
            client.write(
                simple_response(
                    429,
                    "Too many requests in progress from your address "
                    "(max_page_requests_per_client).\n",
                    retry_after=5,
                    close=not head.keep_alive,
                )
            )
            return head.keep_alive and not head.upgrade
        environ = app_environ(environ_for(head, client.peer, client.port, client.scheme), body)
        environ[CLIENT_GONE] = client.gone
        self.in_app[key] += 1
        try:
            keep = await self.app_calls.call(client, environ, head, APP_WAIT_SECONDS)
        except Busy:
            client.write(
                simple_response(
                    503, "minibinder is busy; try again in a moment.\n", retry_after=5, close=True
                )
            )
            return False
        finally:
            self.in_app[key] -= 1
            if self.in_app[key] <= 0:
                del self.in_app[key]
        return keep and not head.upgrade

    # -- HTTP to sessions ------------------------------------------------------------------

    def _touch(self, session_id: str) -> None:
        if self.routes.note(session_id):
            self.loop.run_in_executor(None, self.routes.flush)


def _framing_problem(head: RequestHead) -> str:
    """Why a request cannot be served as framed, or ""."""
    if not head.target.startswith(b"/"):
        return "Only origin-form request targets are served."
    coding = header(head.headers, b"transfer-encoding")
    if coding is not None and coding.strip().lower() != b"chunked":
        return "Transfer-Encoding must be exactly 'chunked'."
    if head.upgrade and (head.chunked or head.length):
        # llhttp stops reading at an upgrade's head: a body would be read as the next request.
        return "A request that asks to upgrade the connection cannot carry a body."
    return ""


async def _read_body(client: ClientConnection, limit: int) -> bytes | Failed:
    """A request's whole body, at most `limit` bytes (under the body deadline armed at its
    head)."""
    parts: list[bytes] = []
    size = 0
    while True:
        event = await client.next_event()
        if isinstance(event, End):
            return b"".join(parts)
        if isinstance(event, Failed):
            return event
        if not isinstance(event, Body):
            return Failed(400, "The request body could not be read.")
        size += len(event.data)
        if size > limit:
            return Failed(413, "minibinder's pages take at most 1 MiB.")
        parts.append(event.data)
