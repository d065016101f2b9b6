"""The front's relay to sessions: one HTTP request at a time over kept-alive connections,
written anew in one framing of its own, or a WebSocket piped as raw bytes once the session
answered 101. Given where a request goes (an `Exchange`), it knows nothing of routes or guards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .connection import HEAD_LIMIT, QUEUE_LIMIT, Body, Connection, End, Limits, ResponseHead
from .dispatch import error_html
from .headers import Headers, header, response_headers, session_cookie
from .inject import MAX_INJECT_BYTES, inject_script, injectable
from .upstream import Upstream, UpstreamPool, read_up_to
from .wire import RequestHead, request_bytes, simple_response

UPGRADE_ANSWER_SECONDS = 30.0
UPSTREAM_ANSWER_SECONDS = 300.0  # a session's answer, and each piece of it


@dataclass
class Exchange:
    """One request to a session on its way: where it goes and what to add on the way back."""

    head: RequestHead
    target: str
    path: bytes  # the raw target asked of the session
    headers: Headers
    session: str
    cookie_prefix: str
    banner: bytes = b""  # the tag added to the page, if it is one


class SessionRelay:
    """Relays exchanges to sessions for one worker's loop; `touch(session_id)` notes activity."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        pool: UpstreamPool,
        limits: Limits,
        touch: Callable[[str], None],
    ):
        self.loop, self.pool, self.limits, self.touch = loop, pool, limits, touch

    async def http(self, client: Connection, exchange: Exchange) -> bool:
        """Relay one HTTP request; whether the client's connection may carry another."""
        head = exchange.head
        if head.has_body:
            if head.expects_continue:
                client.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            # The body (or its first QUEUE_LIMIT bytes, for an upload) is here before any
            # connection to the session is taken for it.
            await client.read_ahead(QUEUE_LIMIT)
            failed = client.failed_ahead()
            if client.closed or failed is not None:
                if failed is not None and not client.closed:
                    client.write(simple_response(failed.status, failed.reason + "\n", close=True))
                return False
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
        self, client: Connection, upstream: Upstream, reused: bool, exchange: Exchange
    ) -> bool:
        head = exchange.head
        sent = request_bytes(
            head.method, exchange.path, exchange.headers, head.chunked, head.length
        )
        upstream.write(sent)
        if head.has_body and not await self._send_body(client, upstream, head.chunked):
            upstream.abort()
            if not client.closed:
                client.write(
                    simple_response(400, "The request body could not be read.\n", close=True)
                )
            return False
        event = await _answer_of(upstream)
        stale = reused and upstream.closed and not head.has_body
        if stale and not isinstance(event, ResponseHead):
            # A kept-alive connection the other side had closed: once more on a new one.
            try:
                upstream = await self.pool.connect(exchange.target)
            except (TimeoutError, OSError):
                return self._unreachable(client, exchange)
            try:
                upstream.write(sent)
                event = await _answer_of(upstream)
            except BaseException:
                upstream.abort()
                raise
        # Interim answers (103 Early Hints; 100 Continue, though Expect is not passed on) are
        # dropped: the real answer follows on the same connection.
        while isinstance(event, End) or (
            isinstance(event, ResponseHead) and 100 <= event.status < 200
        ):
            event = await _answer_of(upstream)
        if not isinstance(event, ResponseHead):
            upstream.abort()
            return self._unreachable(client, exchange)
        try:
            return await self._respond(client, upstream, exchange, event)
        except BaseException:
            upstream.abort()
            raise

    def _unreachable(self, client: Connection, exchange: Exchange) -> bool:
        body = error_html(
            "The session is not answering",
            "It may have just been stopped, "
            "or it is overloaded. Try again in a moment, or launch the "
            "repository again.",
        )
        keep = exchange.head.keep_alive and not exchange.head.has_body
        client.write(
            simple_response(503, body, content_type="text/html; charset=utf-8", close=not keep)
        )
        return keep and not exchange.head.upgrade

    async def _send_body(self, client: Connection, upstream: Upstream, chunked: bool) -> bool:
        """The client's body to the session, framed anew; False when it broke off."""
        while True:
            event = await client.next_event()
            if isinstance(event, Body):
                if chunked:
                    upstream.write_chunk(event.data)
                else:
                    upstream.write(event.data)
                await upstream.drain(self.limits.body_timeout)
            elif isinstance(event, End):
                if chunked:
                    upstream.write(b"0\r\n\r\n")
                return True
            else:
                return False

    async def _respond(
        self, client: Connection, upstream: Upstream, exchange: Exchange, answer: ResponseHead
    ) -> bool:
        status, head = answer.status, exchange.head
        headers = response_headers(answer.headers)
        if status < 300:
            self.touch(exchange.session)
        headers = [
            (n, v)
            for n, v in headers
            if n.lower() != b"set-cookie"
            or session_cookie(v.decode("latin-1"), exchange.cookie_prefix)
        ]
        bodiless = head.method == "HEAD" or status in (204, 304) or 100 <= status < 200
        length = header(answer.headers, b"content-length")
        keep = head.keep_alive and not head.upgrade
        first = b""
        if exchange.banner and status == 200 and injectable(answer.headers):
            page, whole = await read_up_to(upstream, MAX_INJECT_BYTES)
            if whole:
                body = inject_script(page, exchange.banner)
                headers = [(n, v) for n, v in headers if n.lower() != b"content-length"]
                headers.append((b"Content-Length", b"%d" % len(body)))
                client.write(_head(status, answer.reason, headers, keep) + body)
                self._release(upstream, answer.keep_alive)
                return keep
            first = page
        if bodiless:
            client.write(_head(status, answer.reason, headers, keep))
            # A HEAD's answer names a length it does not send: that parser is done with.
            if head.method == "HEAD":
                upstream.abort()
            else:
                self._release(upstream, answer.keep_alive)
            return keep
        chunked = length is None
        if chunked and head.version == "1.0":
            keep = False  # an HTTP/1.0 client reads to the end of the connection
            chunked = False
        if chunked:
            headers.append((b"Transfer-Encoding", b"chunked"))
        if not await self._stream(
            client, upstream, _head(status, answer.reason, headers, keep), first, chunked
        ):
            upstream.abort()
            return False
        self._release(upstream, answer.keep_alive)
        return keep

    async def _stream(
        self, client: Connection, upstream: Upstream, head: bytes, first: bytes, chunked: bool
    ) -> bool:
        """The answer's head and body to the client. What the session has already sent goes
        out in one write with the head: a small answer costs the client one send."""
        out = [head]
        if first:
            out += _framed(first, chunked)
        while True:
            while upstream.events and isinstance(upstream.events[0], Body):
                event = await upstream.next_event()  # queued: returns at once
                out += _framed(event.data, chunked)  # type: ignore[union-attr]
            if upstream.events and isinstance(upstream.events[0], End):
                await upstream.next_event()
                if chunked:
                    out.append(b"0\r\n\r\n")
                client.write(b"".join(out))
                return True
            if out:
                client.write(b"".join(out))
                out = []
                await client.drain(self.limits.idle_timeout)
            event = await _answer_of(upstream)
            if isinstance(event, Body):
                out += _framed(event.data, chunked)
            elif isinstance(event, End):
                if chunked:
                    client.write(b"0\r\n\r\n")
                return True
            else:
                # The session ended early: the client must not take this for the whole body.
                client.abort()
                return False

    def _release(self, upstream: Upstream, keeps: bool) -> None:
        if keeps:
            self.pool.put(upstream)
        else:
            upstream.abort()

    # -- WebSocket -------------------------------------------------------------------------

    async def websocket(self, client: Connection, exchange: Exchange) -> None:
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

    async def _handshake(self, client: Connection, upstream: Upstream, exchange: Exchange) -> None:
        head = exchange.head
        upstream.seen = bytearray()
        upstream.write(request_bytes(head.method, exchange.path, exchange.headers, False, None))
        event = await _answer_of(upstream, UPGRADE_ANSWER_SECONDS)
        if not isinstance(event, ResponseHead):
            client.write(
                simple_response(
                    502, "The session did not answer the WebSocket handshake.\n", close=True
                )
            )
            return
        if event.status != 101 or not upstream.raw_head:
            page, _ = await read_up_to(upstream, HEAD_LIMIT)
            kept = [
                (n, v) for n, v in response_headers(event.headers) if n.lower() != b"content-length"
            ]
            kept.append((b"Content-Length", b"%d" % len(page)))
            client.write(_head(event.status, event.reason, kept, False) + page)
            return
        self.touch(exchange.session)
        client.write(upstream.raw_head)
        await self._pipe(client, upstream, exchange.session)

    async def _pipe(self, client: Connection, upstream: Upstream, session_id: str) -> None:
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
                self.touch(session_id)
            if self.loop.time() - last >= limit:
                client.abort()
                upstream.abort()
            self.loop.call_later(min(limit, 1.0), check)

        check()
        await done


async def _answer_of(upstream: Upstream, seconds: float = UPSTREAM_ANSWER_SECONDS) -> Any:
    """The session's next event; a session silent for `seconds` is cut off."""
    upstream.arm(seconds)
    try:
        return await upstream.next_event()
    finally:
        upstream.disarm()


def _framed(data: bytes, chunked: bool) -> list[bytes]:
    return [b"%x\r\n" % len(data), data, b"\r\n"] if chunked else [data]


def _head(status: int, reason: bytes, headers: Headers, keep: bool) -> bytes:
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason or b"-")]
    lines += [b"%s: %s\r\n" % pair for pair in headers]
    lines.append(b"Connection: keep-alive\r\n\r\n" if keep else b"Connection: close\r\n\r\n")
    return b"".join(lines)
