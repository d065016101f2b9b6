"""What a setting's values are (pure): each kind reads a value from TOML (typed) or from the
environment (text), checks it, and stores it parsed, so `config.session_memory_limit` is a number
of bytes and a misspelt setting name is an attribute error, not a string looked up at run time.
Every error names the setting and says what a right value looks like."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError
from .firewall import check_allow_entries
from .hostnames import internal_host_entry

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_DNS_NAME = re.compile(
    r"(?=.{1,200}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*"
)


class Kind:
    """How one setting's values are read, checked and written back as TOML."""

    def read(self, name: str, value: Any, from_env: bool) -> Any:
        raise NotImplementedError

    def toml(self, value: Any) -> str:
        """The value as a TOML file writes it (the docs show defaults this way)."""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        return json.dumps(value)


@dataclass(frozen=True)
class Flag(Kind):
    def read(self, name: str, value: Any, from_env: bool) -> bool:
        if from_env:
            lowered = str(value).strip().lower()
            if lowered not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                raise ConfigError(f"{name}: expected true or false, got {value!r}")
            return lowered in {"1", "true", "yes", "on"}
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: expected true or false, got {value!r}")
        return value


@dataclass(frozen=True)
class Count(Kind):
    """A whole number; `minimum` 0 lets 0 mean "no limit"; `maximum` bounds a percentage."""

    minimum: int = 1
    maximum: int | None = None

    def read(self, name: str, value: Any, from_env: bool) -> int:
        try:
            number = int(value) if from_env else value
        except ValueError:
            number = None
        if not isinstance(number, int) or isinstance(number, bool) or number < self.minimum:
            what = "positive" if self.minimum else "non-negative"
            if self.maximum is not None:
                what = f"{what} (up to {self.maximum})"
            raise ConfigError(f"{name}: expected a {what} whole number, got {value!r}")
        if self.maximum is not None and number > self.maximum:
            raise ConfigError(
                f"{name}: {number} is more than {self.maximum}; expected a whole number from "
                f"{self.minimum} to {self.maximum}"
            )
        return number


@dataclass(frozen=True)
class Seconds(Kind):
    """A positive number (of seconds, or any other unit the help names)."""

    def read(self, name: str, value: Any, from_env: bool) -> float:
        try:
            number = float(value) if from_env else value
        except ValueError:
            number = None
        if not isinstance(number, int | float) or isinstance(number, bool) or number <= 0:
            raise ConfigError(f"{name}: expected a positive number, got {value!r}")
        return float(number)


@dataclass(frozen=True)
class Size(Kind):
    """Bytes, written like 512M or 2G (binary units); stored as an int."""

    def read(self, name: str, value: Any, from_env: bool) -> int:
        return parse_size(value, name)

    def toml(self, value: Any) -> str:
        for unit in ("T", "G", "M", "K"):
            scale = _SIZE_UNITS[unit.lower()]
            if value % scale == 0:
                return json.dumps(f"{value // scale}{unit}")
        return str(value)


def parse_size(value: Any, name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _SIZE_RE.match(str(value))
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"{name}: expected a size like 512M or 2G, got {value!r}")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


@dataclass(frozen=True)
class Text(Kind):
    """A string, checked by `check` (given the setting's name and the value) when it is set."""

    check: Callable[[str, str], None] | None = None
    empty_ok: bool = True  # "" (the usual "not set") skips the check

    def read(self, name: str, value: Any, from_env: bool) -> str:
        if not isinstance(value, str):
            raise ConfigError(f"{name}: expected a string, got {value!r}")
        if self.check is not None and (value or not self.empty_ok):
            self.check(name, value)
        return value


@dataclass(frozen=True)
class Choice(Kind):
    options: tuple[str, ...]

    def read(self, name: str, value: Any, from_env: bool) -> str:
        if value not in self.options:
            raise ConfigError(f"{name}: expected one of {', '.join(self.options)}, got {value!r}")
        return value


@dataclass(frozen=True)
class TextList(Kind):
    """A list of strings (comma-separated in the environment), each read by `item`."""

    item: Callable[[str, str], str] | None = None

    def read(self, name: str, value: Any, from_env: bool) -> list[str]:
        if from_env:
            value = [part.strip() for part in str(value).split(",") if part.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{name}: expected a list of strings, got {value!r}")
        return [self.item(name, v) for v in value] if self.item else list(value)


@dataclass(frozen=True)
class EgressList(Kind):
    def read(self, name: str, value: Any, from_env: bool) -> list[str]:
        return check_allow_entries(name, TextList().read(name, value, from_env))


@dataclass(frozen=True)
class Table(Kind):
    """A TOML table (K=V,K=V in the environment) of strings or of non-negative counts."""

    values: type
    description: str
    env_form: str
    key: Callable[[str, str], None] | None = None
    entry: Callable[[str, str, Any], None] | None = None

    def read(self, name: str, value: Any, from_env: bool) -> dict:
        if from_env:
            pairs = [part.rsplit("=", 1) for part in str(value).split(",") if part.strip()]
            try:
                value = {k.strip(): self.values(v.strip()) for k, v in pairs}
            except ValueError:
                raise ConfigError(f"{name}: expected {self.env_form}, got {value!r}") from None
        if not isinstance(value, dict) or not all(
            isinstance(k, str)
            and isinstance(v, self.values)
            and not isinstance(v, bool)
            and (not isinstance(v, int) or v >= 0)
            for k, v in value.items()
        ):
            raise ConfigError(f"{name}: expected {self.description}, got {value!r}")
        for key, item in value.items():
            if self.key is not None:
                self.key(name, key)
            if self.entry is not None:
                self.entry(name, key, item)
        return dict(value)


# -- the checks some kinds are given ---------------------------------------------------------


def regex(name: str, pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as error:
        raise ConfigError(f"{name}: {pattern!r} is not a regular expression: {error}") from None
    return pattern


def regex_key(name: str, pattern: str) -> None:
    regex(name, pattern)


ULIMIT_NAMES = ("core", "fsize", "memlock", "nofile", "nproc", "stack")


def ulimit_key(name: str, key: str) -> None:
    if key not in ULIMIT_NAMES:
        raise ConfigError(f"{name}: keys are limits among {', '.join(ULIMIT_NAMES)}, got {key!r}")


def version_key(name: str, version: str) -> None:
    if not re.fullmatch(r"\d+\.\d+", version):
        raise ConfigError(f'{name}: keys are versions like "3.11", got {version!r}')


def http_url_entry(name: str, version: str, url: Any) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in url:
        raise ConfigError(f"{name}: {version} = {url!r} is not an http(s) URL")


def network(name: str, value: str) -> str:
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        raise ConfigError(f"{name}: expected an IP address or network, got {value!r}") from None


def internal_host(name: str, value: str) -> str:
    try:
        internal_host_entry(value)
    except ValueError as error:
        raise ConfigError(f"{name}: {error}") from None
    return value


def registry(name: str, value: str) -> str:
    """A registry as image references name it: a host, or host:port (port 1 to 65535)."""
    match = re.fullmatch(
        r"([a-z0-9]([a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:]+\])(:(\d{1,5}))?", value.strip().lower()
    )
    if not match or (match.group(4) and not 0 < int(match.group(4)) < 65536):
        raise ConfigError(
            f"{name}: expected a registry host or host:port, like "
            f"registry.lab.example:5000, got {value!r}"
        )
    return value.strip().lower()


def address(name: str, value: str) -> None:
    """`host:port` (or `[v6]:port`), the port from 1 to 65535."""
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{name}: expected host:port, like 127.0.0.1:8585, got {value!r}")


def dns_name(name: str, value: str) -> None:
    if not _DNS_NAME.fullmatch(value):
        raise ConfigError(
            f"{name}: expected a lowercase DNS name like binder.example.org, got {value!r}"
        )


def public_url(name: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name}: expected an http(s) URL, got {value!r}")
    if parts.query or parts.fragment:
        raise ConfigError(f"{name}: no query or fragment, got {value!r}")
    if parts.path and not parts.path.endswith("/"):
        raise ConfigError(f"{name}: a path must end with / ({value}/), got {value!r}")
    if "//" in parts.path or any(seg in (".", "..") for seg in parts.path.split("/")):
        raise ConfigError(f"{name}: the path {parts.path!r} is not a plain path")


def origin(name: str, value: str) -> None:
    """ "*" or one origin as browsers send it: scheme://host[:port], no path, no trailing slash."""
    if value == "*":
        return
    parts = urlsplit(value)
    if (
        parts.scheme in ("http", "https")
        and parts.hostname
        and parts.path == "/"
        and not (parts.query or parts.fragment)
    ):
        raise ConfigError(
            f"{name}: {value!r} ends with a slash, which a browser's Origin never has, so it "
            f"would never match; write {value.rstrip('/')!r}"
        )
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
    ):
        raise ConfigError(
            f'{name}: expected "*" or an origin like https://thebe.example.org (scheme, host '
            f"and port; no path), got {value!r}"
        )


def code_hash(name: str, value: str) -> None:
    """What `minibinder access-code` prints: pbkdf2_sha256$<iterations>$<salt>$<hash>. A shell's
    double quotes read each `$...` as a variable and leave the value without its $ signs."""
    parts = value.split("$")
    if (
        len(parts) == 4
        and parts[0] == "pbkdf2_sha256"
        and parts[1].isdigit()
        and parts[2]
        and re.fullmatch(r"[0-9a-f]{64}", parts[3])
    ):
        return
    if value.startswith("pbkdf2_sha256") and "$" not in value:
        raise ConfigError(
            f"{name}: the hash has lost its $ signs ({value[:20]}...): shell double quotes ate "
            "them, reading each $... as a variable. Put the value in single quotes "
            "('pbkdf2_sha256$...'), or in the settings file, where double quotes keep it"
        )
    raise ConfigError(
        f"{name}: expected the hash `minibinder access-code` prints (pbkdf2_sha256$...), got "
        f"{value[:20]!r}..."
    )


def package_repository(name: str, value: str) -> None:
    filled = value.replace("{codename}", "bookworm").replace("{date}", "latest")
    parts = urlsplit(filled)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or not re.fullmatch(r"[A-Za-z0-9._~:/?#@!$&()*+,;=%-]+", filled)
    ):
        raise ConfigError(
            f"{name}: expected an http(s) URL ({{codename}} and {{date}} may "
            f"appear in it), got {value!r}"
        )


def image_prefix(name: str, value: str) -> None:
    if not re.fullmatch(r"[a-z0-9][a-z0-9._/-]*", value):
        raise ConfigError(
            f"{name}: must be lowercase letters, digits, '.', '_', '-' or '/', got {value!r}"
        )


def kind_of(default: Any) -> Kind:
    """The kind a setting without one has, from its default."""
    if isinstance(default, bool):
        return Flag()
    if isinstance(default, float):
        return Seconds()
    if isinstance(default, int):
        return Count()
    if isinstance(default, list):
        return TextList()
    if isinstance(default, str):
        return Text()
    raise TypeError(f"no kind for a default of {type(default).__name__}")
