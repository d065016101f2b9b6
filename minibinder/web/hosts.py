"""Which Host headers minibinder answers (pure), and the WSGI guard that refuses the others.

A Host header is the client's word; stored or echoed, a forged one would send users elsewhere
(a warm session's BINDER_LAUNCH_HOST, absolute links). With `public_url` set, its host (and
`allowed_hosts`) are the only ones; without it, the names of the address minibinder listens on:
loopback names for 127.0.0.1, any IP address on the listening port for 0.0.0.0 (a workshop VM
reached by IP), never an arbitrary name.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from ..config import Config
from ..wsgi import StartResponse, reply

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def _split(host: str) -> tuple[str, str]:
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host.partition("]")
        return name + "]", rest.removeprefix(":")
    name, _, port = host.partition(":")
    return name, port


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def host_allowed(host: str, config: Config, listener: str = "") -> bool:
    """Whether to answer `host`; `listener` is the address the request came in on when it is
    not `bind` (the operator's own listener: public_url does not name it)."""
    name, port = _split(host)
    if not name:
        return False
    allowed = {_split(h) for h in config.allowed_hosts}
    if config.public_url and not listener:
        public = urlsplit(config.public_url)
        default = "443" if public.scheme == "https" else "80"
        allowed.add((public.hostname or "", str(public.port or default)))
        return (name, port or default) in allowed or (name, "") in allowed
    if (name, port) in allowed or (name, "") in allowed:
        return True
    bind_name, bind_port = _split(listener or config.bind)
    if port != bind_port:
        return False
    if bind_name in ("0.0.0.0", "[::]", ""):
        return _is_ip(name) or name in LOOPBACK_NAMES
    if bind_name in ("127.0.0.1", "localhost", "[::1]"):
        return name in LOOPBACK_NAMES
    return name == bind_name


def listener_port(environ: dict) -> int | None:
    """The local port the connection came in on (from the socket, never from a header)."""
    sock = environ.get("gunicorn.socket")
    if sock is None:
        return None
    try:
        return int(sock.getsockname()[1])
    except (OSError, IndexError, TypeError, ValueError):
        return None


def port_of(address: str) -> int | None:
    port = address.rpartition(":")[2]
    return int(port) if port.isdigit() else None


class HostCheck:
    """WSGI middleware: a Host this server does not answer to gets 400 and goes no further."""

    def __init__(self, app: Callable, config: Config):
        self.app, self.config = app, config

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        host = environ.get("HTTP_HOST", "")
        admin = (
            listener_port(environ)
            == port_of(self.config.admin_address)
            != port_of(self.config.bind)
        )
        if host_allowed(host, self.config, self.config.admin_address if admin else ""):
            return self.app(environ, start_response)
        message = (
            f"This server does not answer to the host name {host[:100]!r}. Use the address "
            "the operator published (public_url), or ask them to add it to allowed_hosts.\n"
        )
        return reply(start_response, "400 Bad Request", "text/plain; charset=utf-8",
                     message.encode())  # fmt: skip
