"""Admission: may one more session start? Pure, given counts and the host's memory.

Per-client limits count a person: the user a sign-in proxy names, else the browser (a signed
cookie minted on the first page). The address is a coarse fallback sized for a room: a
classroom behind one NAT address is forty browsers, and all of them together (with any client
that sends no cookie, such as a script) hold at most `max_sessions_per_address` sessions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ..config import Config
from ..errors import QuotaExceeded

RETRY_AFTER = 60


@dataclass(frozen=True)
class Ask:
    """One question to admission: may `what` start for `client` now? (`Sessions.admit` answers
    every one of them: a launch page, an event stream, a build, a session.)"""

    what: Literal["stream", "build", "session"]
    client: str = ""  # client_key: a user, a browser, or an address
    address: str = ""  # where the request came from
    provider_spec: str = ""  # a session's repository, as <provider>/<spec>
    repo_url: str = ""
    launching: bool = True  # a stream that asks for a session, not only an image

    @classmethod
    def stream(cls, client: str, address: str = "", launching: bool = True) -> Ask:
        return cls("stream", client, address, launching=launching)

    @classmethod
    def build(cls, client: str, address: str = "") -> Ask:
        return cls("build", client, address)

    @classmethod
    def session(cls, provider_spec: str, repo_url: str, client: str = "", address: str = "") -> Ask:
        return cls("session", client, address, provider_spec, repo_url)


@dataclass(frozen=True)
class Occupancy:
    sessions: int  # launching or running, warm ones included
    repo_sessions: int  # of the repository asked for
    host_memory: int  # bytes
    client_sessions: int = 0  # launched or claimed by the client asking
    address_sessions: int = 0  # of every client behind the asking client's address
    client: str = ""  # the client_key asking ("": nobody in particular, the warm pool)
    seats: int | None = None  # room the cluster's nodes have in all (None: host_memory decides)


@dataclass(frozen=True)
class ClientLoad:
    """What one client has open right now."""

    sessions: int
    streams: int  # launch event streams
    builds: int  # images it waits for or has being built (one per image, however many wait)
    address_sessions: int = 0  # of every client behind its address


def total_limit(config: Config, host_memory: int) -> int:
    """The configured limit, or as many reservations as fit in memory minus the headroom."""
    fit = max(0, (host_memory - config.memory_headroom) // config.session_memory_reservation)
    return min(config.max_sessions, fit) if config.max_sessions else fit


def capacity_text(config: Config, host_memory: int) -> str:
    """How many sessions this host admits, and from what, in words."""
    seats = total_limit(config, host_memory)
    capped = (
        f"; max_sessions {config.max_sessions}"
        if config.max_sessions and config.max_sessions == seats
        else ""
    )
    return (
        f"this host admits {sessions_text(seats)} (memory {host_memory / 2**30:.1f} GiB, "
        f"reservation {config.session_memory_reservation / 2**30:.2g} GiB each, headroom "
        f"{config.memory_headroom / 2**30:.2g} GiB{capped})"
    )


def sessions_text(count: int) -> str:
    return f"{count} session" + ("" if count == 1 else "s")


def repo_limit(config: Config, provider_spec: str) -> int:
    for pattern, limit in config.repo_quotas.items():
        if re.search(pattern, provider_spec):
            return limit
    return config.max_sessions_per_repo


def check_admission(provider_spec: str, occupancy: Occupancy, config: Config) -> None:
    """Raise QuotaExceeded with a polite, specific message when the session may not start."""
    limit = total_limit(config, occupancy.host_memory)
    if occupancy.seats is not None:
        limit = (
            min(config.max_sessions, occupancy.seats) if config.max_sessions else occupancy.seats
        )
    if occupancy.sessions >= limit:
        raise QuotaExceeded(
            f"This server is full: {occupancy.sessions} sessions are running and it has room "
            f"for {limit}. Sessions end when idle, so please try again in a few minutes.",
            RETRY_AFTER,
        )
    if occupancy.client:
        check_client_sessions(
            occupancy.client, occupancy.client_sessions, occupancy.address_sessions, config
        )
    per_repo = repo_limit(config, provider_spec)
    if occupancy.repo_sessions >= per_repo:
        raise QuotaExceeded(
            f"This repository already has {occupancy.repo_sessions} sessions running, the most "
            f"this server allows for one repository ({per_repo}). Please try again in a few "
            "minutes.",
            RETRY_AFTER,
        )


def client_key(address: str, user: str = "", browser: str = "") -> str:
    """What the per-client limits count: the user a sign-in proxy named, else the browser (its
    signed cookie), else the address."""
    if user:
        return f"user:{user}"
    if browser:
        return f"browser:{browser}"
    return address


def is_browser(key: str) -> bool:
    return key.startswith("browser:")


def is_person(key: str) -> bool:
    return key.startswith(("user:", "browser:"))


def check_client_sessions(key: str, sessions: int, address_sessions: int, config: Config) -> None:
    """May the client `key` (with `sessions` of its own, `address_sessions` behind its address)
    have one more session?"""
    if is_person(key):
        _per_client(
            config,
            "max_sessions_per_client",
            sessions,
            "sessions running",
            "Shut one down (File → Shut Down in JupyterLab) or wait until one ends.",
            RETRY_AFTER,
            "You already have",
        )
    if not is_person(key) or is_browser(key):  # a signed-in user is not counted by address
        _per_client(
            config,
            "max_sessions_per_address",
            max(address_sessions, sessions),  # everyone behind the address, this one too
            "sessions running",
            "A room behind one address (NAT) shares it: the operator can raise it. Or wait "
            "until sessions end.",
            RETRY_AFTER,
            "Your network address already has",
        )


def check_client_stream(load: ClientLoad, key: str, config: Config, launching: bool = True) -> None:
    """May this client open one more launch event stream? (`launching`: it asks for a
    session, not only an image.) A client known only by its address is a room: it may hold as
    many streams as the address may have sessions."""
    if launching:
        check_client_sessions(key, load.sessions, load.address_sessions, config)
    limit = config.max_streams_per_client
    if not is_person(key) and limit:
        limit = max(limit, config.max_sessions_per_address)
    _per_client(
        config,
        "max_streams_per_client",
        load.streams,
        "launches open",
        "Close some of those pages and try again.",
        10,
        limit=limit,
    )


def check_client_build(load: ClientLoad, config: Config) -> None:
    """May this client's launch start (or wait for) a build of one more image?"""
    _per_client(
        config,
        "max_builds_per_client",
        load.builds,
        "builds waiting or running",
        "Try again when one of them is done.",
        30,
    )


def _per_client(
    config: Config,
    setting: str,
    count: int,
    what: str,
    advice: str,
    retry_after: int,
    who: str = "You already have",
    limit: int | None = None,
) -> None:
    """Refuse when `count` of `what` reaches what `setting` allows (0: no limit)."""
    limit = getattr(config, setting) if limit is None else limit
    if limit and count >= limit:
        raise QuotaExceeded(
            f"{who} {count} {what}, the most this server allows ({setting} = {limit}). {advice}",
            retry_after,
        )


def host_memory_bytes(meminfo: str = "/proc/meminfo") -> int:
    with open(meminfo) as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("MemTotal not found in /proc/meminfo")
