"""Which clone URLs may reach git at all: a pure check run before any git process starts."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from urllib.parse import unquote, urlsplit

from ..errors import SpecError
from ..hostnames import HOST_RE, canonical_host, internal_host_entry, is_ip_address

# Characters git or a shell could treat specially; none belongs in a repository URL.
_FORBIDDEN_CHARS = re.compile(r"[\x00-\x20\x7f\"'`<>\\|^{};$]")
KNOWN_SCHEMES = ("https", "http", "git")


def check_clone_url(url: str, allowed_schemes: Sequence[str]) -> str:
    """Return `url` if git may clone it under the operator's allowed schemes, else raise SpecError.

    Refused: local paths and `file:`, git's remote helpers (`ext::`, `fd::`), ssh and scp-like
    addresses, anything starting with `-` (it would become an option), credentials in the URL,
    whitespace and control characters, and schemes the operator did not allow.
    """
    if not isinstance(url, str) or not url:
        raise SpecError("the repository URL is empty")
    if len(url) > 2048:
        raise SpecError("the repository URL is longer than 2048 characters")
    if url.startswith("-"):
        raise SpecError(f"repository URL {url!r} starts with '-': it would be read as an option")
    if _FORBIDDEN_CHARS.search(url):
        raise SpecError(
            f"repository URL {url!r} contains whitespace, a control character or "
            "a character that has no place in a URL"
        )
    if "::" in url.split("/", 1)[0]:
        raise SpecError(f"repository URL {url!r} names a git remote helper; use an https:// URL")
    if "://" not in url:
        if re.match(r"^[\w.-]+@[\w.-]+:", url):
            raise SpecError(f"repository URL {url!r} is an ssh address; use its https:// URL")
        raise SpecError(
            f"repository URL {url!r} is not a URL; use a form like https://host/owner/repo"
        )
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in KNOWN_SCHEMES:
        raise SpecError(f"repository URL scheme {scheme!r} is not supported; use https://")
    if scheme not in allowed_schemes:
        allowed = ", ".join(f"{s}://" for s in allowed_schemes) or "none"
        raise SpecError(
            f"repository URL scheme {scheme}:// is not allowed here (allowed: {allowed})"
        )
    if "@" in parts.netloc:
        raise SpecError("repository URLs must not contain credentials (user@ or user:password@)")
    try:
        port = parts.port
    except ValueError:
        raise SpecError(f"repository URL {url!r} has an invalid port") from None
    host = (parts.hostname or "").lower()
    if not host or not (HOST_RE.match(host) or is_ip_address(host)):
        raise SpecError(f"repository URL {url!r} has no valid host name")
    if port == 0:
        raise SpecError(f"repository URL {url!r} has an invalid port")
    if not parts.path.strip("/"):
        raise SpecError(f"repository URL {url!r} names no repository path")
    if parts.path.startswith("//") or any(
        seg == "-" or seg.startswith("-") for seg in parts.path.split("/")
    ):
        raise SpecError(
            f"repository URL {url!r} has a path segment that could be read as an option"
        )
    if any(unquote(seg) in (".", "..") for seg in parts.path.split("/")):
        # git removes them before it asks for credentials: the path a private repository is
        # decided by must be the path git asks for.
        raise SpecError(f"repository URL {url!r} has a '.' or '..' path segment")
    return url


Resolver = Callable[[str], list[str]]


def resolve_addresses(host: str) -> list[str]:
    """Every address `host` resolves to (the system resolver; an IP literal is itself)."""
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in found})


def internal(address: str) -> bool:
    """Loopback, private, link-local (the cloud metadata address among them), unspecified,
    multicast or reserved: anything that is not a public address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


LOCAL_NAMES = ("localhost", "localhost.localdomain")


def local_name_or_address(host: str) -> bool:
    """An internal host seen without asking DNS: loopback names, internal IP literals."""
    host = host.strip("[]")
    if host in LOCAL_NAMES or host.endswith(".localhost"):
        return True
    return is_ip_address(host) and internal(host)


DEFAULT_PORTS = {"https": 443, "http": 80, "git": 9418}


def url_host_port(url: str) -> tuple[str, int | None]:
    """The host and the port a connection to `url` goes to (the scheme's when none is given)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return canonical_host(parts.hostname or ""), port or DEFAULT_PORTS.get(parts.scheme.lower())


def listed_entries(internal_hosts: Sequence[str]) -> list[tuple[str, int | None]]:
    """The valid entries of `internal_hosts` as (host, port or None); the settings refuse
    invalid ones, and one that got here anyway is never read as a wildcard."""
    entries = []
    for entry in internal_hosts:
        try:
            entries.append(internal_host_entry(entry))
        except ValueError:
            continue
    return entries


def listed_internal_host(url: str, internal_hosts: Sequence[str]) -> bool:
    """Whether `internal_hosts` allows `url`'s host at the port it connects to: an entry with
    a port allows that port only, an entry without one every port of the host."""
    host, port = url_host_port(url)
    return any(h == host and p in (None, port) for h, p in listed_entries(internal_hosts))


def check_clone_host(
    url: str, internal_hosts: Sequence[str], resolve: Resolver | None = None
) -> list[str]:
    """The addresses git may connect to for `url`; refuse hosts that resolve to internal
    addresses unless the operator lists them in `internal_hosts` (an internal GitLab, the
    tests' loopback server), so a launch link cannot scan the server's own network.

    `resolve` defaults to the system resolver, looked up when called (tests replace it)."""
    if listed_internal_host(url, internal_hosts):
        return []
    host, port = url_host_port(url)
    addresses = (resolve or resolve_addresses)(host)
    if not addresses:
        raise SpecError(f"the host name {host!r} of {url} does not resolve")
    if any(internal(address) for address in addresses):
        if any(h == host for h, _ in listed_entries(internal_hosts)):
            entry = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            raise SpecError(
                f"{url} connects to port {port} of {host}, which internal_hosts does not list "
                f"for that host (an entry {entry!r} would allow it)"
            )
        raise SpecError(
            f"{url} points to an address on this server's own or a private network; "
            "minibinder only clones from public hosts unless the operator lists the host in "
            "internal_hosts"
        )
    return addresses
