"""Admission: may one more session start? Pure, given counts and the host's memory."""

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
    client: str = ""
    provider_spec: str = ""  # a session's repository, as <provider>/<spec>
    repo_url: str = ""
    launching: bool = True  # a stream that asks for a session, not only an image

    @classmethod
    def stream(cls, client: str, launching: bool = True) -> Ask:
        return cls("stream", client, launching=launching)

    @classmethod
    def build(cls, client: str) -> Ask:
        return cls("build", client)

    @classmethod
    def session(cls, provider_spec: str, repo_url: str, client: str = "") -> Ask:
        return cls("session", client, provider_spec, repo_url)


@dataclass(frozen=True)
class Occupancy:
    sessions: int  # launching or running, warm ones included
    repo_sessions: int  # of the repository asked for
    host_memory: int  # bytes
    client_sessions: int = 0  # launched or claimed by the client asking


@dataclass(frozen=True)
class ClientLoad:
    """What one client address has open right now."""

    sessions: int
    streams: int  # launch event streams
    builds: int  # of those, waiting for or running a build


def total_limit(config: Config, host_memory: int) -> int:
    """The configured limit, or as many reservations as fit in memory minus the headroom."""
    fit = max(0, (host_memory - config.memory_headroom) // config.session_memory_reservation)
    return min(config.max_sessions, fit) if config.max_sessions else fit


def repo_limit(config: Config, provider_spec: str) -> int:
    for pattern, limit in config.repo_quotas.items():
        if re.search(pattern, provider_spec):
            return limit
    return config.max_sessions_per_repo


def check_admission(provider_spec: str, occupancy: Occupancy, config: Config) -> None:
    """Raise QuotaExceeded with a polite, specific message when the session may not start."""
    limit = total_limit(config, occupancy.host_memory)
    if occupancy.sessions >= limit:
        raise QuotaExceeded(
            f"This server is full: {occupancy.sessions} sessions are running and it has room "
            f"for {limit}. Sessions end when idle, so please try again in a few minutes.",
            RETRY_AFTER,
        )
    check_client_sessions(occupancy.client_sessions, config)
    per_repo = repo_limit(config, provider_spec)
    if occupancy.repo_sessions >= per_repo:
        raise QuotaExceeded(
            f"This repository already has {occupancy.repo_sessions} sessions running, the most "
            f"this server allows for one repository ({per_repo}). Please try again in a few "
            "minutes.",
            RETRY_AFTER,
        )


def client_key(address: str, user: str = "") -> str:
    """What the per-client limits count: the user a sign-in proxy named, else the address."""
    return f"user:{user}" if user else address


def check_client_sessions(sessions: int, config: Config) -> None:
    limit = config.max_sessions_per_client
    if limit and sessions >= limit:
        raise QuotaExceeded(
            f"You already have {sessions} sessions running, the most this server allows one "
            f"client address (max_sessions_per_client = {limit}). Shut one down (File → Shut "
            "Down in JupyterLab) or wait until one ends.",
            RETRY_AFTER,
        )


def check_client_stream(load: ClientLoad, config: Config, launching: bool = True) -> None:
    """May this client open one more launch event stream? (`launching`: it asks for a
    session, not only an image.)"""
    if launching:
        check_client_sessions(load.sessions, config)
    _per_client(
        config,
        "max_streams_per_client",
        load.streams,
        "launches open",
        "Close some of those pages and try again.",
        retry_after=10,
    )


def check_client_build(load: ClientLoad, config: Config) -> None:
    """May this client's launch start (or wait for) one more build?"""
    _per_client(
        config,
        "max_builds_per_client",
        load.builds,
        "builds waiting or running",
        "Try again when one of them is done.",
        retry_after=30,
    )


def _per_client(
    config: Config, setting: str, count: int, what: str, advice: str, retry_after: int
) -> None:
    """Refuse when the client already has as many of `what` as `setting` allows (0: no limit)."""
    limit = getattr(config, setting)
    if limit and count >= limit:
        raise QuotaExceeded(
            f"Your address already has {count} {what}, the most this server allows one client "
            f"({setting} = {limit}). {advice}",
            retry_after,
        )


def host_memory_bytes(meminfo: str = "/proc/meminfo") -> int:
    with open(meminfo) as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("MemTotal not found in /proc/meminfo")
