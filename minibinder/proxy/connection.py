"""One TCP connection read by llhttp, as a stream of typed events a coroutine consumes.

The parser's callbacks queue events (`Head`, `Body`, `End`, `Failed`); the coroutine that owns
the connection takes them in order with `next_event` (so pipelined requests wait their turn),
and reading pauses while more than QUEUE_LIMIT bytes wait. Once two connections are piped
(a WebSocket after its 101), bytes go straight across and no parser reads them.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from dataclasses import dataclass

from ..config import Config
from .headers import Headers
from .wire import RequestHead

HEAD_LIMIT = 64 * 1024  # a request's line and headers; a handshake's answer
QUEUE_LIMIT = 1 << 20  # bytes read ahead of the consumer before reading pauses
HEAD_COST = 4096  # what a queued request head counts against QUEUE_LIMIT


@dataclass(frozen=True)
class Limits:
    header_timeout: float
    idle_timeout: float
    body_timeout: float
    websocket_idle_timeout: float
    connections_per_client: int  # per worker; 0: no limit
    page_requests_per_client: int = 0  # in the app at once, per worker; 0: no limit
    # Trusted proxies carry many clients on one address: no connection cap for them.
    exempt: Callable[[str], bool] = lambda address: False

    @classmethod
    def of(cls, config: Config, exempt: Callable[[str], bool]) -> Limits:
        return cls(
            config.request_header_timeout,
            config.idle_connection_timeout,
            config.request_body_timeout,
            config.websocket_idle_timeout,
            config.max_connections_per_client,
            config.max_page_requests_per_client,
            exempt,
        )


class Closed(Exception):
    """The other end went away (or was cut off by a deadline)."""


@dataclass(frozen=True)
class ResponseHead:
    status: int
    reason: bytes
    headers: Headers
    keep_alive: bool  # the upstream keeps the connection open after this response


@dataclass(frozen=True)
class Body:
    data: bytes


@dataclass(frozen=True)
class End:
    """The message (request or response) is complete."""


@dataclass(frozen=True)
class Failed:
    """The bytes could not be read as HTTP: `status` is what a client is answered."""

    status: int
    reason: str


@dataclass(frozen=True)
class Lost:
    """The connection closed before the next event."""


Event = RequestHead | ResponseHead | Body | End | Failed | Lost
END, LOST = End(), Lost()


class Connection(asyncio.Protocol):
    """An asyncio protocol whose bytes are parsed (subclasses own the parser) into events."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.events: collections.deque[Event] = collections.deque()
        self.queued = 0  # bytes waiting in `events`
        self.ends = 0  # End and Failed events waiting: a message's body is all here
        self.waiter: asyncio.Future | None = None
        self.drained: asyncio.Future | None = None
        self.writing_paused = self.reading_paused = self.closed = False
        self.pipe: Connection | None = None  # the other end, once bytes are piped raw
        self.rest = b""  # bytes after an upgrade's head, kept until piping starts
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
        if self.rest or self.parsing_stopped():
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

    def parsing_stopped(self) -> bool:
        """After an upgrade or an error, nothing more is parsed."""
        return False

    def on_body(self, body: bytes) -> None:
        self.queued += len(body)
        self.events.append(Body(body))

    def on_message_complete(self) -> None:
        self.ends += 1
        self.events.append(END)

    def fail(self, status: int, reason: str) -> None:
        self.ends += 1
        self.events.append(Failed(status, reason))

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    # the consumer's side

    async def next_event(self) -> Event:
        while not self.events:
            if self.closed:
                return LOST
            self._resume()
            self.waiter = self.loop.create_future()
            await self.waiter
        event = self.events.popleft()
        if isinstance(event, Body):
            self.queued -= len(event.data)
        elif isinstance(event, End | Failed):
            self.ends -= 1
        elif isinstance(event, RequestHead):
            self.queued -= HEAD_COST
        return event

    async def read_ahead(self, limit: int) -> None:
        """Wait until the message being read is all here, `limit` bytes of it are, or the
        connection closed (its deadline is the caller's: the body timer armed at the head)."""
        while not self.ends and self.queued < limit and not self.closed:
            self._resume()
            self.waiter = self.loop.create_future()
            await self.waiter

    def failed_ahead(self) -> Failed | None:
        """A failure already read in what is queued of the current message (a body that could
        not be read)."""
        for event in self.events:
            if isinstance(event, Failed):
                return event
            if isinstance(event, End):
                return None
        return None

    def _resume(self) -> None:
        if self.reading_paused and self.transport:
            self.reading_paused = False
            self.transport.resume_reading()

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
