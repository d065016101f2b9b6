"""Egress rules for the networks builds and sessions run on: no build step and no session reaches
the host's own services, private or link-local addresses, or the cloud metadata address.

Packets a container sends to the host itself pass the host's INPUT chain; packets it sends
anywhere else are forwarded and pass Docker's DOCKER-USER chain first. minibinder keeps two chains
of its own per installation and jumps to them from those two, for each of its bridges:

- `<prefix>-HOST` (from INPUT): only replies to connections the host opened (the proxy talking
  to a session) come in, and the package repositories the operator configured when they run on
  the host itself (their address and port only); everything else a container sends to the host
  is refused.
- `<prefix>-OUT` (from DOCKER-USER): replies pass, the operator's allowlist passes, DNS to the
  host's resolvers passes (Docker's embedded DNS forwards to them from the container), every
  other special-purpose IPv4 range is refused; the public internet stays reachable.

The rule text is made by pure functions here; `install` feeds it to `iptables-restore` (one
atomic replacement of the chains' contents) and adds the jumps that are missing. It is run at
start-up and again by the background jobs, so rules lost to a firewall reload come back.
Docker disables IPv6 inside containers of networks created without it, which minibinder's are.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import ConfigError

# IANA's special-purpose IPv4 ranges that are not the public internet.
BLOCKED_RANGES = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
)
RESOLV_CONFS = ("/etc/resolv.conf", "/run/systemd/resolve/resolv.conf")


@dataclass(frozen=True)
class EgressPolicy:
    """What one installation's rules say: its chains' prefix, the bridges they guard (an
    interface name, or a prefix ending in `+`), and what stays reachable."""

    prefix: str
    interfaces: tuple[str, ...]
    allowed: tuple[str, ...] = ()
    resolvers: tuple[str, ...] = ()
    services: tuple[tuple[str, int], ...] = ()  # (address, TCP port) of configured repositories

    @property
    def host_chain(self) -> str:
        return f"{self.prefix}-HOST"

    @property
    def out_chain(self) -> str:
        return f"{self.prefix}-OUT"


def chain_prefix(instance: str) -> str:
    """Chains are per installation (several may share a host): at most 28 characters."""
    return f"MB-{instance[:12]}"


def restore_text(policy: EgressPolicy) -> str:
    """`iptables-restore --noflush` input that replaces the contents of both chains at once."""
    host, out = policy.host_chain, policy.out_chain
    lines = ["*filter", f":{host} - [0:0]", f":{out} - [0:0]"]
    replies = "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"
    services = [
        f"-d {address}/32 -p tcp --dport {port} -j RETURN" for address, port in policy.services
    ]
    lines.append(f"-A {host} {replies}")
    lines += [f"-A {host} {service}" for service in services]
    lines += [f"-A {host} -p tcp -j REJECT --reject-with tcp-reset", f"-A {host} -j REJECT"]
    lines.append(f"-A {out} {replies}")
    lines += [f"-A {out} {service}" for service in services]
    lines += [f"-A {out} -d {network} -j RETURN" for network in policy.allowed]
    for resolver in policy.resolvers:
        lines += [
            f"-A {out} -d {resolver}/32 -p {protocol} --dport 53 -j RETURN"
            for protocol in ("udp", "tcp")
        ]
    for network in BLOCKED_RANGES:
        lines += [
            f"-A {out} -d {network} -p tcp -j REJECT --reject-with tcp-reset",
            f"-A {out} -d {network} -j REJECT",
        ]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def jumps(policy: EgressPolicy) -> list[tuple[str, list[str]]]:
    """(built-in chain, rule) pairs that send each guarded bridge's packets to our chains."""
    found: list[tuple[str, list[str]]] = []
    for interface in policy.interfaces:
        found.append(("INPUT", ["-i", interface, "-j", policy.host_chain]))
        found.append(("DOCKER-USER", ["-i", interface, "-j", policy.out_chain]))
    return found


def resolvers_in(texts: Iterable[str]) -> tuple[str, ...]:
    """The IPv4 name servers listed in resolv.conf texts, loopback ones left out (Docker does not
    forward to those)."""
    found: list[str] = []
    for text in texts:
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                try:
                    address = ipaddress.ip_address(parts[1])
                except ValueError:
                    continue
                if address.version == 4 and not address.is_loopback and parts[1] not in found:
                    found.append(parts[1])
    return tuple(found)


_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*", re.IGNORECASE)


def check_allow_entries(name: str, values: Sequence[str]) -> list[str]:
    """The `egress_allow` setting: IPv4 addresses, networks or host names; or a clear error."""
    checked = []
    for value in values:
        value = value.strip()
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            if not _HOST_NAME.fullmatch(value) or value.replace(".", "").isdigit():
                raise ConfigError(
                    f"{name}: expected an IPv4 address, network or host name, got {value!r}"
                ) from None
            checked.append(value.lower())
            continue
        if network.version != 4:
            raise ConfigError(f"{name}: only IPv4 is filtered, got {value!r}")
        checked.append(str(network))
    return checked


def repository_services(
    urls: Iterable[str], resolve: Callable[[str], list[str]]
) -> tuple[tuple[str, int], ...]:
    """(IPv4 address, port) of each http(s) URL's host, as resolved now."""
    found: list[tuple[str, int]] = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            continue
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            continue
        try:
            addresses = [str(ipaddress.IPv4Address(parts.hostname))]
        except ValueError:
            addresses = resolve(parts.hostname)
        found += [(a, port) for a in addresses if (a, port) not in found]
    return tuple(found)


def allowed_networks(
    entries: Iterable[str], resolve: Callable[[str], list[str]]
) -> tuple[str, ...]:
    """Networks to let through: entries that are networks as they are, host names as the
    IPv4 addresses they resolve to now (an unresolvable name allows nothing)."""
    found: list[str] = []
    for entry in entries:
        try:
            networks = [str(ipaddress.ip_network(entry, strict=False))]
        except ValueError:
            networks = [f"{address}/32" for address in resolve(entry)]
        found += [network for network in networks if network not in found]
    return tuple(found)


# -- the edge: iptables --------------------------------------------------------------------------

Runner = Callable[..., subprocess.CompletedProcess]


class FirewallError(Exception):
    """The rules could not be installed (no iptables, no permission, no DOCKER-USER chain)."""


def resolve_ipv4(name: str) -> list[str]:
    try:
        found = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in found})


def host_resolvers() -> tuple[str, ...]:
    texts = []
    for path in RESOLV_CONFS:
        try:
            with open(path, encoding="utf-8", errors="replace") as file:
                texts.append(file.read())
        except OSError:
            continue
    return resolvers_in(texts)


def install(policy: EgressPolicy, run: Runner = subprocess.run) -> None:
    """Put the rules in place (idempotent); raise FirewallError saying what is missing."""
    if shutil.which("iptables") is None or shutil.which("iptables-restore") is None:
        raise FirewallError("iptables is not installed (Debian: apt install iptables)")
    _iptables(run, ["iptables-restore", "--noflush"], policy_text=restore_text(policy))
    for chain, rule in jumps(policy):
        if run(["iptables", "-w", "-C", chain, *rule], capture_output=True).returncode != 0:
            _iptables(run, ["iptables", "-w", "-I", chain, "1", *rule])


def _iptables(run: Runner, command: list[str], policy_text: str | None = None) -> None:
    try:
        done = run(command, input=policy_text, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise FirewallError(f"{command[0]} failed: {error}") from None
    if done.returncode != 0:
        said = (done.stderr or done.stdout or "").strip().splitlines()
        reason = said[-1] if said else f"exit status {done.returncode}"
        if "Permission denied" in reason or "you must be root" in reason:
            reason += " (installing egress rules needs root)"
        raise FirewallError(f"{command[0]}: {reason}")


def installed(prefix: str, run: Runner = subprocess.run) -> bool:
    """Whether an installation's chains exist and something jumps to them."""
    if shutil.which("iptables") is None:
        raise FirewallError("iptables is not installed (Debian: apt install iptables)")
    listed = run(["iptables", "-w", "-S"], capture_output=True, text=True)
    if listed.returncode != 0:
        raise FirewallError(f"iptables: {(listed.stderr or '').strip()[:200]}")
    text = listed.stdout or ""
    return all(f"-j {prefix}-{name}" in text for name in ("HOST", "OUT"))


def uninstall(prefix: str, run: Runner = subprocess.run) -> None:
    """Remove an installation's chains and every jump to them (tests; an operator retiring one)."""
    chains = (f"{prefix}-HOST", f"{prefix}-OUT")
    for builtin in ("INPUT", "DOCKER-USER"):
        listed = run(["iptables", "-w", "-S", builtin], capture_output=True, text=True)
        for line in (listed.stdout or "").splitlines():
            words = line.split()
            if words[:1] == ["-A"] and words[-2:-1] == ["-j"] and words[-1] in chains:
                run(["iptables", "-w", "-D", *words[1:]], capture_output=True)
    for chain in chains:
        run(["iptables", "-w", "-F", chain], capture_output=True)
        run(["iptables", "-w", "-X", chain], capture_output=True)


# -- a swarm node's session ports: the manager only ----------------------------------------------


def inbound_text(chain: str, sources: Sequence[str]) -> str:
    """`iptables-restore --noflush` input for the chain that guards what enters a swarm node's
    session bridge: replies, and new connections from `sources` (the manager's addresses, which
    relay to the sessions' published ports); nothing else."""
    lines = ["*filter", f":{chain} - [0:0]"]
    lines.append(f"-A {chain} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN")
    lines += [f"-A {chain} -s {source}/32 -j RETURN" for source in sources]
    lines += [f"-A {chain} -p tcp -j REJECT --reject-with tcp-reset", f"-A {chain} -j REJECT"]
    return "\n".join(lines + ["COMMIT"]) + "\n"


def install_inbound(
    chain: str, interface: str, sources: Sequence[str], run: Runner = subprocess.run
) -> None:
    """Only `sources` open connections into `interface`'s containers (forwarded packets,
    the way a published port's traffic goes after Docker's DNAT); idempotent."""
    if shutil.which("iptables") is None or shutil.which("iptables-restore") is None:
        raise FirewallError("iptables is not installed (Debian: apt install iptables)")
    _iptables(run, ["iptables-restore", "--noflush"], policy_text=inbound_text(chain, sources))
    rule = ["-o", interface, "-j", chain]
    if run(["iptables", "-w", "-C", "DOCKER-USER", *rule], capture_output=True).returncode != 0:
        _iptables(run, ["iptables", "-w", "-I", "DOCKER-USER", "1", *rule])
