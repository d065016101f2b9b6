"""Credentials for private repositories: the operator's `git_credentials` file, read and
checked, and the git options that hand them to git through a credential helper.

The file is TOML, one table per host or host + path prefix, and must be readable by its owner
only (0600); it lives outside the settings file, so settings can be shown, copied and diffed
without the tokens:

    ["git.lab.example"]                       # every repository on that host
    token = "glpat-..."                       # user name "token" when none is given
    ["github.com/our-lab"]                    # repositories under github.com/our-lab/
    username = "lab-bot"
    token = "ghp_..."
    ["http://127.0.0.1:8080/private"]         # plain HTTP: only where written so

git is never given a token in a URL, an argument or an environment variable: it asks the
helper (`repos/credential_helper.py`, given the file's path), which answers from the file. A
repository is *private* when an entry covers its URL; what minibinder shows of it follows.
Errors here name the file and the entry, never a token.
"""

from __future__ import annotations

import os
import shlex
import stat
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .errors import ConfigError

DEFAULT_USERNAME = "token"  # GitHub, GitLab and Gitea take any user name with a token
_FIELDS = {"token", "username"}


@dataclass(frozen=True)
class CredentialEntry:
    """One table of the file: where it applies, and what git is told there."""

    host: str  # lower case, with ":port" when the key named one
    path: tuple[str, ...]  # path segments the repository's path must start with
    plain_http: bool  # the key said http://: credentials may go over plain HTTP
    username: str
    token: str

    def covers(self, scheme: str, host: str, path: str) -> bool:
        if scheme not in ("https", "http") or (scheme == "http" and not self.plain_http):
            return False
        return host.lower() == self.host and _segments(path)[: len(self.path)] == self.path


@dataclass(frozen=True)
class Credentials:
    entries: tuple[CredentialEntry, ...]

    def lookup(self, scheme: str, host: str, path: str) -> CredentialEntry | None:
        """The entry for one request of git's, the longest path prefix first."""
        found = [entry for entry in self.entries if entry.covers(scheme, host, path)]
        return max(found, key=lambda entry: len(entry.path)) if found else None

    def covers_url(self, url: str) -> bool:
        """Whether a repository URL is private: an entry gives credentials for it."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return self.lookup(parts.scheme, host, parts.path) is not None


def _segments(path: str) -> tuple[str, ...]:
    parts = [part for part in path.strip("/").split("/") if part]
    if parts:
        parts[-1] = parts[-1].removesuffix(".git")
    return tuple(parts)


def parse_key(key: str) -> tuple[str, tuple[str, ...], bool]:
    """(host, path segments, plain HTTP allowed) of one table's name."""
    plain_http = key.startswith("http://")
    rest = key.removeprefix("http://").removeprefix("https://")
    host, _, path = rest.partition("/")
    if not host or "@" in host or any(c.isspace() for c in key) or "://" in rest:
        raise ValueError("a table must be named by a host or host/path (no user, no spaces)")
    return host.lower(), _segments(path), plain_http


def parse_credentials(text: str, where: str) -> Credentials:
    """The file's text as Credentials; ConfigError naming `where` and the entry otherwise."""
    try:
        tables = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"git_credentials: {where} is not valid TOML ({error})") from None
    entries = []
    for key, table in tables.items():
        if not isinstance(table, dict):
            raise ConfigError(
                f"git_credentials: {where}: {key!r} must be a table, e.g. "
                f'["{key}"] with token = "..." below it'
            )
        try:
            host, path, plain_http = parse_key(key)
        except ValueError as error:
            raise ConfigError(f"git_credentials: {where}: [{key!r}]: {error}") from None
        unknown = sorted(set(table) - _FIELDS)
        if unknown:
            raise ConfigError(
                f"git_credentials: {where}: [{key!r}] has {', '.join(unknown)}; an entry "
                "holds token and, optionally, username"
            )
        token, username = table.get("token"), table.get("username", DEFAULT_USERNAME)
        if not isinstance(token, str) or not token.strip() or "\n" in token:
            raise ConfigError(f"git_credentials: {where}: [{key!r}] needs a token (one line)")
        if not isinstance(username, str) or not username or "\n" in username:
            raise ConfigError(f"git_credentials: {where}: [{key!r}]: username must be a name")
        entries.append(CredentialEntry(host, path, plain_http, username, token.strip()))
    return Credentials(tuple(entries))


def read_credentials(path: str | os.PathLike) -> Credentials:
    """Read the operator's file, refusing one that others may read (or that is not a file)."""
    where = str(path)
    try:
        info = os.stat(where)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"git_credentials: {where} is not a file")
        if info.st_mode & 0o077:
            raise ConfigError(
                f"git_credentials: {where} may be read by others (mode "
                f"{stat.S_IMODE(info.st_mode):04o}); it holds tokens: chmod 600 {where}"
            )
        text = Path(where).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"git_credentials: cannot read {where}: {error.strerror}") from None
    return parse_credentials(text, where)


_CACHE: dict[str, tuple[tuple[float, int], Credentials]] = {}


def current_credentials(path: str) -> Credentials:
    """The file as it is now, read again only when it changed (per process)."""
    if not path:
        return Credentials(())
    try:
        info = os.stat(path)
        stamp = (info.st_mtime, info.st_size)
    except OSError:
        stamp = (0.0, -1)
    cached = _CACHE.get(path)
    if cached and cached[0] == stamp:
        return cached[1]
    credentials = read_credentials(path)
    _CACHE[path] = (stamp, credentials)
    return credentials


def is_private(url: str, credentials_file: str) -> bool:
    """Whether minibinder treats the repository at `url` as private (see the module's doc)."""
    return bool(credentials_file) and current_credentials(credentials_file).covers_url(url)


def credential_options(credentials_file: str) -> list[str]:
    """git options that make git ask minibinder's helper, and only it, for credentials; []
    without a file. `useHttpPath` hands the helper the repository's path (prefix entries)."""
    if not credentials_file:
        return []
    command = shlex.join(
        [sys.executable, "-I", "-m", "minibinder.repos.credential_helper", credentials_file]
    )
    return ["-c", f"credential.helper=!{command}", "-c", "credential.useHttpPath=true"]
