"""Clients from their own loopback addresses, for the tests that attack the front from one
address: `connect` and `get_from` as a given address, and `SecondClient`, another client asking
its pages all along and counting what failed and how long each took."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable, Sequence


def connect(serve, source: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(
        ("127.0.0.1", serve.port), timeout=30, source_address=(source, 0)
    )


def get_from(serve, source: str, path: str, timeout: float = 15) -> tuple[int, bytes]:
    """GET `path` on a new connection from the loopback address `source`."""
    connection = http.client.HTTPConnection("127.0.0.1", serve.port, timeout=timeout)
    connection.sock = connect(serve, source)
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, body


def answered(path: str, status: int, body: bytes) -> bool:
    return status == 200


class SecondClient(threading.Thread):
    """Another client (127.0.0.2) asking `paths` in turn, all along, until `stop` is set;
    `ok(path, status, body)` says whether an answer counts as served."""

    def __init__(
        self,
        serve,
        paths: Sequence[str],
        ok: Callable[[str, int, bytes], bool] = answered,
        source: str = "127.0.0.2",
    ):
        super().__init__(daemon=True)
        self.serve, self.paths, self.ok, self.source = serve, paths, ok, source
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for path in self.paths:
                started = time.monotonic()
                try:
                    status, body = get_from(self.serve, self.source, path)
                    if not self.ok(path, status, body):
                        self.failures.append(f"{path}: {status} {body[:80]!r}")
                except OSError as error:
                    self.failures.append(f"{path}: {error}")
                self.latencies.append(time.monotonic() - started)
            time.sleep(0.02)

    def p99_ms(self) -> float:
        ordered = sorted(self.latencies)
        return 1000 * ordered[int(0.99 * (len(ordered) - 1))]
