"""Who the client is: its address and scheme, from forwarding headers only when the request came
from a proxy the operator trusts (`trusted_proxies`), never by default.

Behind the lab's nginx, every request comes from nginx's address; the launch log, the per-client
limits and absolute URLs need the browser's. `X-Forwarded-For` is read from the right: addresses
of trusted proxies are skipped, the first other one is the client (anything left of it was said
by the client itself and proves nothing). `Forwarded` (RFC 7239) is read the same way when
`X-Forwarded-For` is absent. Headers from anybody else are ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ..config import Config
from ..wsgi import StartResponse, reply

PEER = "minibinder.peer"  # environ key: the address the connection really came from

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class BadForwarding(ValueError):
    """A trusted proxy sent forwarding headers that cannot be read."""


@dataclass(frozen=True)
class Client:
    address: str
    scheme: str


def trusted_networks(values: Sequence[str]) -> list[Network]:
    return [ipaddress.ip_network(value, strict=False) for value in values]


def is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def _address(text: str, header: str) -> str:
    """One hop of a forwarding header as a plain IP address."""
    value = text.strip().strip('"')
    if value.startswith("["):  # [v6] or [v6]:port
        value = value[1:].split("]", 1)[0]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise BadForwarding(f"{header} names {text.strip()[:60]!r}, not an IP address") from None


def _forwarded_hops(forwarded: str) -> tuple[list[str], str]:
    """The `for=` addresses of a Forwarded header, and the last `proto=` given."""
    hops, proto = [], ""
    for element in forwarded.split(","):
        for pair in element.split(";"):
            name, _, value = pair.strip().partition("=")
            if name.lower() == "for":
                hops.append(_address(value, "Forwarded"))
            elif name.lower() == "proto":
                proto = value.strip().strip('"').lower()
    return hops, proto


def client_of(
    peer: str, headers: dict[str, str], scheme: str, trusted: Sequence[Network]
) -> Client:
    """The client behind `peer` (the connection's address). Raise BadForwarding when a
    trusted proxy's headers cannot be read."""
    if not trusted or not is_trusted(peer, trusted):
        return Client(peer, scheme)
    forwarded_for = headers.get("x-forwarded-for", "")
    if forwarded_for.strip():
        hops = [_address(hop, "X-Forwarded-For") for hop in forwarded_for.split(",")]
        proto = headers.get("x-forwarded-proto", "").strip().lower()
    elif headers.get("forwarded", "").strip():
        hops, proto = _forwarded_hops(headers["forwarded"])
    else:
        hops, proto = [], headers.get("x-forwarded-proto", "").strip().lower()
    address = peer
    for hop in reversed(hops):
        address = hop
        if not is_trusted(hop, trusted):
            break
    proto = proto.split(",")[-1].strip()
    if proto and proto not in ("http", "https"):
        raise BadForwarding(f"X-Forwarded-Proto says {proto[:20]!r}; expected http or https")
    return Client(address, proto or scheme)


class ClientAddress:
    """WSGI middleware, outermost: REMOTE_ADDR and wsgi.url_scheme become the client's (the
    front gives the connection's own, read off its socket)."""

    def __init__(self, app: Callable, config: Config):
        self.app = app
        self.trusted = trusted_networks(config.trusted_proxies)

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        peer = environ.get("REMOTE_ADDR", "")
        environ[PEER] = peer
        if not self.trusted:
            return self.app(environ, start_response)
        headers = {
            name: environ.get(key, "")
            for name, key in (
                ("x-forwarded-for", "HTTP_X_FORWARDED_FOR"),
                ("x-forwarded-proto", "HTTP_X_FORWARDED_PROTO"),
                ("forwarded", "HTTP_FORWARDED"),
            )
        }
        try:
            client = client_of(peer, headers, environ.get("wsgi.url_scheme", "http"), self.trusted)
        except BadForwarding as error:
            message = f"Bad forwarding headers from a trusted proxy: {error}\n"
            return reply(
                start_response, "400 Bad Request", "text/plain; charset=utf-8", message.encode()
            )
        environ["REMOTE_ADDR"], environ["wsgi.url_scheme"] = client.address, client.scheme
        return self.app(environ, start_response)
