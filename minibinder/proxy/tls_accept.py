"""HTTPS listeners that tell plain HTTP where to go: each accepted connection's first byte
decides. A TLS handshake (a record of type 22) is served over TLS as before; anything else (a
browser or curl sent http:// to the HTTPS port) is answered with a one-line hint and closed,
instead of the empty reply a failed handshake gives. Nothing of what it sent is parsed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable

from .wire import simple_response

log = logging.getLogger("minibinder.front")

TLS_HANDSHAKE = 0x16  # the content type of a TLS record that opens a handshake
PLAIN_HTTP_HINT = simple_response(
    400, "This port speaks HTTPS: use https:// instead of http:// in the address.\n", close=True
)
LINGER_SECONDS = 2.0  # reading what the client still sends, so that closing does not reset


class TlsAcceptor:
    """Accepts on one listening socket in this worker's loop (its other workers accept on the
    same socket), sniffs, and hands TLS connections to `factory`'s protocol."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        factory: Callable[[], asyncio.Protocol],
        tls: ssl.SSLContext,
        first_byte_timeout: float,
    ):
        self.loop, self.sock, self.factory, self.tls = loop, sock, factory, tls
        self.timeout = first_byte_timeout
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = self.loop.create_task(self._accept())

    def close(self) -> None:
        """Stop accepting; connections already handed on go on."""
        if self.task is not None:
            self.task.cancel()

    async def _accept(self) -> None:
        while True:
            try:
                conn, _ = await self.loop.sock_accept(self.sock)
            except OSError as error:  # out of descriptors: let some close first
                log.warning("accepting an HTTPS connection failed: %s", error)
                await asyncio.sleep(0.1)
                continue
            conn.setblocking(False)
            self.loop.create_task(self._serve(conn))

    async def _serve(self, conn: socket.socket) -> None:
        try:
            first = await asyncio.wait_for(self._peek(conn), self.timeout)
        except (TimeoutError, OSError):
            conn.close()
            return
        if not first:  # closed before sending anything
            conn.close()
        elif first[0] == TLS_HANDSHAKE:
            try:
                await self.loop.connect_accepted_socket(
                    self.factory, conn, ssl=self.tls, ssl_handshake_timeout=self.timeout
                )
            except (OSError, ssl.SSLError, TimeoutError, ConnectionError):
                conn.close()  # a failed handshake, as the TLS server would have ended it
        else:
            await self._hint(conn)

    async def _peek(self, conn: socket.socket) -> bytes:
        readable: asyncio.Future[None] = self.loop.create_future()

        def ready() -> None:
            if not readable.done():
                readable.set_result(None)

        self.loop.add_reader(conn.fileno(), ready)
        try:
            await readable
        finally:
            self.loop.remove_reader(conn.fileno())
        return conn.recv(1, socket.MSG_PEEK)

    async def _hint(self, conn: socket.socket) -> None:
        """Answer plain HTTP with the hint, then read on briefly: closing with unread data
        would reset the connection, and the client might never see the answer."""
        with contextlib.suppress(OSError, TimeoutError):
            await self.loop.sock_sendall(conn, PLAIN_HTTP_HINT)
            conn.shutdown(socket.SHUT_WR)
            deadline = self.loop.time() + LINGER_SECONDS
            while self.loop.time() < deadline:
                left = deadline - self.loop.time()
                if not await asyncio.wait_for(self.loop.sock_recv(conn, 65536), left):
                    break
        conn.close()
