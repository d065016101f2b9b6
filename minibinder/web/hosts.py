"""Which Host headers minibinder answers (pure), and the WSGI guard that refuses the others.

A Host header is the client's word; stored or echoed, a forged one would send users elsewhere
(a warm session's BINDER_LAUNCH_HOST, absolute links). Answered: the host of `public_url` (on
its port) and `allowed_hosts`, and always the names of the address minibinder listens on, on
that port: loopback names for 127.0.0.1, the address itself, any IP address for 0.0.0.0 (a
workshop VM reached by IP, `curl 127.0.0.1` on the host); never another name. With public_url
set every absolute link says public_url, so no answered name can send anyone elsewhere. The
operator's own listener (`admin_bind`) answers to the names of its own address and to
public_url's host on its port.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from ..config import Config
from ..proxy.routes import session_of_host
from ..proxy.wire import LISTENER_PORT
from ..repos.urlpolicy import is_ip_address
from ..wsgi import StartResponse, reply

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
ON_ADMIN_LISTENER = "minibinder.admin_listener"  # environ key: set once per request, here


def _split(host: str) -> tuple[str, str]:
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host.partition("]")
        return name + "]", rest.removeprefix(":")
    name, _, port = host.partition(":")
    return name, port


def port_of(address: str) -> int | None:
    port = address.rpartition(":")[2]
    return int(port) if port.isdigit() else None


class HostPolicy:
    """The Host names one listener answers to, worked out once from the settings."""

    def __init__(self, config: Config, listener: str = ""):
        """`listener` is the address requests came in on when it is not `bind` (the operator's
        own listener, which public_url does not name)."""
        self.allowed = {_split(h) for h in config.allowed_hosts}
        self.default_port = self.public_port = ""
        self.public = bool(config.public_url) and not listener
        self.bind_name, self.bind_port = _split(listener or config.bind)
        if config.public_url:
            public = urlsplit(config.public_url)
            if self.public:
                self.default_port = "443" if public.scheme == "https" else "80"
                self.public_port = str(public.port or self.default_port)
                self.allowed.add((public.hostname or "", self.public_port))
            else:  # the operator's listener answers to the public name on its own port
                self.allowed.add((public.hostname or "", self.bind_port))
        # Sessions on origins of their own answer on the main listener only.
        self.session_domain = "" if listener else config.session_domain

    def allows(self, host: str) -> bool:
        name, port = _split(host)
        if not name:
            return False
        if session_of_host(host, self.session_domain):
            return (port or self.default_port) == (self.public_port or self.bind_port)
        if (name, port or self.default_port) in self.allowed or (name, "") in self.allowed:
            return True
        if port != self.bind_port:
            return False
        # The names of the address listened on are always answered, public_url or not:
        # loopback (monitoring on the host), the bind address, and on 0.0.0.0 any IP address
        # (a room that uses the VM's IP). None can send anyone elsewhere: with public_url,
        # every absolute link says public_url; without it, no name but these is answered.
        if self.bind_name in ("0.0.0.0", "[::]", ""):
            return is_ip_address(name.strip("[]")) or name in LOOPBACK_NAMES
        if self.bind_name in LOOPBACK_NAMES:
            return name in LOOPBACK_NAMES
        return name == self.bind_name


def host_allowed(host: str, config: Config, listener: str = "") -> bool:
    return HostPolicy(config, listener).allows(host)


def listener_port(environ: dict) -> int | None:
    """The local port the connection came in on, as the front saw it (proxy/front.py sets it,
    or says it in its signed header); never from a client's header."""
    return environ.get(LISTENER_PORT)


class HostCheck:
    """WSGI middleware: a Host this server does not answer to gets 400 and goes no further.
    It also notes, for what comes after it, whether the request came in on the operator's
    listener."""

    def __init__(self, app: Callable, config: Config):
        self.app = app
        self.admin_port = port_of(config.admin_address)
        separate = self.admin_port != port_of(config.bind)
        self.main = HostPolicy(config)
        self.admin = HostPolicy(config, config.admin_address) if separate else self.main
        self.separate = separate

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        on_admin = self.separate and listener_port(environ) == self.admin_port
        environ[ON_ADMIN_LISTENER] = on_admin
        host = environ.get("HTTP_HOST", "")
        if (self.admin if on_admin else self.main).allows(host):
            return self.app(environ, start_response)
        message = (
            f"This server does not answer to the host name {host[:100]!r}. Use the address "
            "the operator published (public_url), or ask them to add it to allowed_hosts.\n"
        )
        return reply(
            start_response, "400 Bad Request", "text/plain; charset=utf-8", message.encode()
        )
