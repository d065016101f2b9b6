"""minibinder's own pages, called by the front in a bounded pool of threads.

The app gets the request the front already read, body and all (design §4c, one parser per
request): nothing of the client's bytes is sent to a second parser, so no framing can be read
two ways. A thread is taken only for a complete request, and it writes the response through
the front's loop under the client's write deadline: a client that stops reading frees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from typing import Any

from .connection import Closed, Connection
from .headers import HOP_BY_HOP, OWN_PAGE_HEADERS
from .wire import RequestHead

log = logging.getLogger("minibinder.front")

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]
# (environ, status code, bytes sent, seconds): one line of the access log
AccessLog = Callable[[dict, int, int, float], None]


class Busy(Exception):
    """No thread came free in time."""


class AppCalls:
    """At most `threads` requests in the app at once, each in its own thread."""

    def __init__(
        self,
        app: WSGIApp,
        loop: asyncio.AbstractEventLoop,
        threads: int,
        write_timeout: float,
        access_log: AccessLog | None = None,
    ):
        self.app, self.loop = app, loop
        self.threads = threads
        self.write_timeout = write_timeout
        self.access_log = access_log
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="minibinder-app")
        self.slots = asyncio.Semaphore(threads)
        self.busy = 0  # threads inside the app now

    async def call(self, client: Connection, environ: dict, head: RequestHead, wait: float) -> bool:
        """Answer `head` on `client` from the app; whether the connection may carry another
        request. Raise Busy when no thread comes free within `wait` seconds."""
        try:
            await asyncio.wait_for(self.slots.acquire(), wait)
        except TimeoutError:
            raise Busy() from None
        self.busy += 1
        try:
            return await self.loop.run_in_executor(self.executor, self._run, client, environ, head)
        finally:
            self.busy -= 1
            self.slots.release()

    def _run(self, client: Connection, environ: dict, head: RequestHead) -> bool:
        started = time.monotonic()
        response = _Response(client, head, self.loop, self.write_timeout)
        result: Any = None
        try:
            result = self.app(environ, response.start)
            for data in result:
                response.send(data)
            response.finish()
        except Closed:
            response.keep = False
        except Exception:
            log.exception("the app failed on %s", environ.get("PATH_INFO", "?"))
            response.fail()
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    log.exception("closing the app's response failed")
        if self.access_log is not None:
            self.access_log(
                environ, response.status_code, response.sent, time.monotonic() - started
            )
        return response.keep

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


class _Response:
    """One WSGI response, framed by minibinder and written through the loop."""

    def __init__(
        self, client: Connection, head: RequestHead, loop: asyncio.AbstractEventLoop, timeout: float
    ):
        self.client, self.head, self.loop, self.timeout = client, head, loop, timeout
        self.status = ""
        self.headers: list[tuple[str, str]] = []
        self.status_code = 0
        self.head_sent = False
        self.length: int | None = None  # what the app said it sends
        self.chunked = False
        self.bodiless = False
        self.sent = 0
        self.keep = head.keep_alive and not head.upgrade

    def start(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
        if exc_info is not None and self.head_sent:
            raise exc_info[1].with_traceback(exc_info[2])
        self.status, self.headers = status, list(headers)
        return self.send  # WSGI's write(), for apps that still use it

    def send(self, data: bytes) -> None:
        if not self.status:
            raise RuntimeError("the app sent a body before start_response")
        out = b"" if self.head_sent else self._head()
        if data and not self.bodiless:
            if self.length is not None:
                data = data[: max(0, self.length - self.sent)]
            self.sent += len(data)
            if self.chunked and data:
                out += b"%x\r\n%s\r\n" % (len(data), data)
            else:
                out += data
        if out:
            self._push(out)

    def finish(self) -> None:
        out = b"" if self.head_sent else self._head()
        if self.chunked:
            out += b"0\r\n\r\n"
        elif self.length is not None and self.sent < self.length and not self.bodiless:
            # The app said more than it gave: the client must not wait for the rest, nor
            # read the next response as it.
            self.keep = False
            if out:
                self._push(out)
            self._call(self._abort())
            return
        if out:
            self._push(out)

    def fail(self) -> None:
        """The app raised: a 500 if nothing was sent yet, else the connection is cut."""
        self.keep = False
        if self.head_sent:
            self._call(self._abort())
            return
        self.status, self.headers = (
            "500 Internal Server Error",
            [("Content-Type", "text/plain; charset=utf-8")],
        )
        self.length = None
        with contextlib.suppress(Closed):
            self._push(self._head(b"Internal error; the server's log says more.\n"))

    def _head(self, body: bytes | None = None) -> bytes:
        self.head_sent = True
        code = int(self.status.split(" ", 1)[0])
        self.status_code = code
        self.bodiless = self.head.method == "HEAD" or code in (204, 304) or 100 <= code < 200
        lines = [b"HTTP/1.1 %s\r\n" % self.status.encode("latin-1")]
        for name, value in self.headers:
            lower = name.lower().encode("latin-1")
            if lower in HOP_BY_HOP:
                continue
            if lower == b"content-length":
                if not value.strip().isdigit():
                    continue
                self.length = int(value)
            lines.append(b"%s: %s\r\n" % (name.encode("latin-1"), value.encode("latin-1")))
        lines += [b"%s: %s\r\n" % pair for pair in OWN_PAGE_HEADERS]
        if body is not None:
            lines.append(b"Content-Length: %d\r\n" % len(body))
        elif self.length is None and not self.bodiless:
            if self.head.version == "1.0":
                self.keep = False  # an HTTP/1.0 client reads to the end of the connection
            else:
                self.chunked = True
                lines.append(b"Transfer-Encoding: chunked\r\n")
        lines.append(
            b"Connection: keep-alive\r\n\r\n" if self.keep else b"Connection: close\r\n\r\n"
        )
        return b"".join(lines) + (body or b"")

    def _push(self, data: bytes) -> None:
        self._call(self._write(data))

    def _call(self, work: Any) -> None:
        asyncio.run_coroutine_threadsafe(work, self.loop).result()

    async def _write(self, data: bytes) -> None:
        self.client.write(data)
        await self.client.drain(self.timeout)

    async def _abort(self) -> None:
        self.client.abort()


def app_environ(environ: dict, body: bytes) -> dict:
    """The WSGI keys a server adds to the request's environ, with its body (read whole)."""
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    environ.update(
        {
            "wsgi.version": (1, 0),
            "wsgi.input": BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "CONTENT_LENGTH": str(len(body)) if body or environ.get("CONTENT_LENGTH") else "",
        }
    )
    if not environ["CONTENT_LENGTH"]:
        del environ["CONTENT_LENGTH"]
    return environ
