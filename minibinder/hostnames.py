"""Host names and addresses as settings and URLs write them (pure): shared by the settings
(which check `internal_hosts` entries as they load) and the clone-URL policy."""

from __future__ import annotations

import ipaddress
import re

HOST_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


def is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def internal_host_entry(entry: str) -> tuple[str, int | None]:
    """(host, port) of an `internal_hosts` entry: `host`, `host:port`, `[v6]`, `[v6]:port` or
    a bare IPv6 address; the port is None when the entry allows every port. Raises ValueError
    saying what a valid entry looks like."""
    text = entry.strip().lower()
    port_text = ""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"{entry!r} is not host, host:port or [IPv6]:port")
        port_text = rest[1:] if rest else ""
        if rest and not port_text:
            raise ValueError(f"{entry!r} has an empty port")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        if not port_text:
            raise ValueError(f"{entry!r} has an empty port")
    else:
        host = text
    if not host or not (HOST_RE.match(host) or is_ip_address(host)):
        raise ValueError(f"{entry!r} names no valid host (host, host:port or [IPv6]:port)")
    if text.startswith("[") and ":" not in host:  # brackets are for IPv6 addresses only
        raise ValueError(f"{entry!r} is not host, host:port or [IPv6]:port")
    if not port_text:
        return canonical_host(host), None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{entry!r} has an invalid port (1 to 65535)")
    return canonical_host(host), int(port_text)


def canonical_host(host: str) -> str:
    """IP literals in one spelling (`0:0::1` is `::1`), names lower-case."""
    host = host.strip("[]").lower()
    return str(ipaddress.ip_address(host)) if is_ip_address(host) else host
