"""The TCP sockets `minibinder serve` listens on, bound before the workers fork."""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass

LISTEN_BACKLOG = 2048


@dataclass(frozen=True)
class Listener:
    sock: socket.socket
    admin: bool  # the operator's listener: everything goes to the app


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
