"""The front's connections to sessions: responses read by llhttp, kept alive per worker.

A connection goes back to the pool only after an exchange that ended exactly as HTTP says
(the whole request written, the whole response read); anything else closes it.
"""

from __future__ import annotations

import asyncio

import httptools

from .connection import END, HEAD_LIMIT, Body, Closed, Connection, End, ResponseHead
from .headers import Headers, header

POOL_IDLE_SECONDS = 15.0  # under the sessions' own keep-alive timeouts
CONNECT_TIMEOUT = 3.0


class Upstream(Connection):
    """A connection to a session's Jupyter: requests out, responses in."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, target: str, opened: set[Upstream] | None = None
    ):
        super().__init__(loop)
        self.target = target
        self.opened = opened if opened is not None else set()  # live connections, counted
        self.parser = httptools.HttpResponseParser(self)
        self.reason = b""
        self.headers: Headers = []
        self.idle_since = 0.0
        self.broken = self.upgraded = self.in_message = self.until_close = False
        self.seen: bytearray | None = None  # what arrived, while a handshake is answered
        self.raw_head = b""  # the session's 101, as it sent it
        self.pool: UpstreamPool | None = None  # while kept alive there, between requests

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
            self.fail(502, str(error))  # answered as an unreachable session

    def parsing_stopped(self) -> bool:
        return self.upgraded or self.broken

    def on_message_begin(self) -> None:
        self.reason, self.headers = b"", []
        self.in_message = True

    def on_message_complete(self) -> None:
        self.in_message = False
        super().on_message_complete()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.opened.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.opened.discard(self)
        if self.in_message and self.until_close:  # a body that ends with the connection
            self.in_message = False
            self.ends += 1
            self.events.append(END)
        if self.pool is not None:  # closed while kept for the next request
            self.pool.discard(self)
        super().connection_lost(exc)

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        framed = header(self.headers, b"content-length") or header(
            self.headers, b"transfer-encoding"
        )
        self.until_close = framed is None
        keep = bool(self.parser.should_keep_alive())
        self.events.append(
            ResponseHead(self.parser.get_status_code(), self.reason, self.headers, keep)
        )


class UpstreamPool:
    """Kept-alive connections to sessions, per worker; counts every connection it made."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.idle: dict[str, list[Upstream]] = {}
        self.open: set[Upstream] = set()  # every live connection, in use or idle

    async def get(self, target: str) -> tuple[Upstream, bool]:
        """A connection to `target`, and whether it was kept alive from an earlier request."""
        now = self.loop.time()
        idle = self.idle.get(target)
        while idle:
            upstream = idle.pop()
            upstream.pool = None
            if now - upstream.idle_since < POOL_IDLE_SECONDS and not upstream.closed:
                return upstream, True
            upstream.abort()
        return await self.connect(target), False

    async def connect(self, target: str) -> Upstream:
        def factory() -> Upstream:
            return Upstream(self.loop, target, self.open)

        if target.startswith("unix:"):
            made = self.loop.create_unix_connection(factory, target[5:])
        else:
            host, port = target.rsplit(":", 1)
            made = self.loop.create_connection(factory, host, int(port))
        _, upstream = await asyncio.wait_for(made, CONNECT_TIMEOUT)
        return upstream

    def put(self, upstream: Upstream) -> None:
        if upstream.closed or upstream.events or upstream.broken or upstream.upgraded:
            upstream.abort()
            return
        upstream.idle_since = self.loop.time()
        upstream.pool = self
        self.idle.setdefault(upstream.target, []).append(upstream)

    def discard(self, upstream: Upstream) -> None:
        """Forget a kept connection the other side closed (a stopped session's, too)."""
        idle = self.idle.get(upstream.target, [])
        if upstream in idle:
            idle.remove(upstream)
        if not idle:
            self.idle.pop(upstream.target, None)
        upstream.pool = None

    def sweep(self) -> None:
        """Close kept connections idle for longer than POOL_IDLE_SECONDS."""
        now = self.loop.time()
        for idle in list(self.idle.values()):
            for upstream in list(idle):
                if now - upstream.idle_since >= POOL_IDLE_SECONDS:
                    upstream.abort()


async def read_up_to(upstream: Upstream, limit: int) -> tuple[bytes, bool]:
    """Up to `limit` bytes (a little more: whole pieces) of a response body, and whether that
    was all of it."""
    parts: list[bytes] = []
    size = 0
    while size <= limit:
        event = await upstream.next_event()
        if isinstance(event, End):
            return b"".join(parts), True
        if not isinstance(event, Body):
            raise Closed()
        parts.append(event.data)
        size += len(event.data)
    return b"".join(parts), False
