"""Reading the settings (pure but for the files it is given): a TOML file, then `MINIBINDER_*`
variables, then overrides, each value read by its setting's kind (config.py), every unknown
name refused with a "did you mean", and the checks that look at several settings at once."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .config import ENV_PREFIX, MIN_ADMIN_TOKEN, Config, fields
from .errors import ConfigError
from .git_credentials import read_credentials
from .setting_kinds import address
from .setting_rules import check_consistency, did_you_mean


def check_listeners(config: Config) -> Config:
    """The operator's pages need a listener of their own: another port than `bind`'s."""
    address("bind", config.bind)
    address("admin_bind", config.admin_address)
    if config.admin_address.rpartition(":")[2] == config.bind.rpartition(":")[2]:
        raise ConfigError(
            f"admin_bind: {config.admin_address} shares bind's port; the operator's pages need "
            "their own port (a separate origin from session content)"
        )
    check_tls(config)
    if config.admin_token and len(config.admin_token) < MIN_ADMIN_TOKEN:
        raise ConfigError(
            f"admin_token: {len(config.admin_token)} characters is guessable; use "
            f"at least {MIN_ADMIN_TOKEN} (e.g. `openssl rand -hex 24`), or leave it "
            "empty for a random one"
        )
    if config.access == "code" and not config.access_code_hash.startswith("pbkdf2_sha256$"):
        raise ConfigError(
            'access_code_hash: access = "code" needs the hash that `minibinder access-code` prints'
        )
    if config.access == "header" and not config.trusted_proxies:
        raise ConfigError(
            'access = "header" needs trusted_proxies: the identity header is '
            "believed only from them"
        )
    check_private_repositories(config)
    return config


def check_private_repositories(config: Config) -> None:
    """Credentials for private repositories need someone to keep strangers out: an access
    code, or a sign-in proxy and a list of who may launch them. The file is read here, so a
    broken one (or one others may read) stops minibinder at start-up."""
    if not config.git_credentials:
        return
    read_credentials(config.git_credentials)
    if config.access == "open":
        raise ConfigError(
            'git_credentials: with access = "open" anyone could launch the private '
            'repositories it opens; use access = "code" or "header", or remove git_credentials'
        )
    if config.access == "header" and not (config.private_repo_users or config.private_repo_domains):
        raise ConfigError(
            'git_credentials: with access = "header", name who may launch private '
            "repositories in private_repo_users or private_repo_domains"
        )


def check_tls(config: Config) -> None:
    """Both files or neither; readable, and the key fits the certificate."""
    certificate, key = config.tls_certificate, config.tls_key
    if not certificate and not key:
        return
    if not certificate or not key:
        missing = "tls_key" if certificate else "tls_certificate"
        raise ConfigError(f"{missing}: HTTPS needs both tls_certificate and tls_key")
    import ssl

    for name, path in (("tls_certificate", certificate), ("tls_key", key)):
        if not os.path.isfile(path) or not os.access(path, os.R_OK):
            raise ConfigError(f"{name}: {path} is not a readable file")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(certificate, key)
    except (ssl.SSLError, ValueError) as error:
        raise ConfigError(
            f"tls_certificate/tls_key: {certificate} and {key} cannot serve HTTPS ({error})"
        ) from None


def _read(f: dataclasses.Field, value: Any, from_env: bool) -> Any:
    return f.metadata["kind"].read(f.name, value, from_env)


# MINIBINDER_* variables that are not settings (anything else is a typo, and an error).
OTHER_VARIABLES = {
    "MINIBINDER_CONFIG": "the settings file",
    "MINIBINDER_DOCKERD_LOG": "scripts/ensure-docker.sh's log",
}


@dataclass(frozen=True)
class Loaded:
    """Settings as loaded, and where each value in force came from: "default", "file PATH",
    "environment MINIBINDER_NAME" or "given" (an override, e.g. a command-line option)."""

    config: Config
    sources: dict[str, str]


def load_config(
    path: str | os.PathLike | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Read settings from TOML (if a path is given), then `MINIBINDER_*` variables, then overrides.

    The environment is passed in, never read from globals, so tests can hand in their own.
    """
    return load_settings(path, environ, overrides).config


def load_settings(
    path: str | os.PathLike | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Loaded:
    """`load_config`, telling where each value came from (`minibinder settings --effective`)."""
    environ = environ or {}
    by_name = {f.name: f for f in fields()}
    values: dict[str, Any] = {}
    sources = dict.fromkeys(by_name, "default")
    for name, value in _read_file(path).items():
        if name not in by_name:
            raise ConfigError(
                f"{name}: unknown setting in {path}{did_you_mean(name, by_name)}; "
                "`minibinder settings` lists them all"
            )
        values[name] = _read_from_file(by_name, name, value, str(path))
        sources[name] = f"file {path}"
    for variable in sorted(environ):
        if not variable.startswith(ENV_PREFIX) or variable in OTHER_VARIABLES:
            continue
        name = variable.removeprefix(ENV_PREFIX)
        if name not in {n.upper() for n in by_name}:
            known = [n.upper() for n in by_name] + [
                v.removeprefix(ENV_PREFIX) for v in OTHER_VARIABLES
            ]
            hint = did_you_mean(name.upper(), known).replace("mean ", "mean " + ENV_PREFIX)
            raise ConfigError(
                f"{variable}: no such setting{hint}; setting NAME is MINIBINDER_NAME in the "
                "environment (`minibinder settings` lists them)"
            )
        values[name.lower()] = _read(by_name[name.lower()], environ[variable], True)
        sources[name.lower()] = f"environment {variable}"
    for name, value in (overrides or {}).items():
        if name not in by_name:
            raise ConfigError(f"{name}: unknown setting{did_you_mean(name, by_name)}")
        values[name] = _read(by_name[name], value, False)
        sources[name] = "given"
    config = check_listeners(check_consistency(Config(**values)))
    return Loaded(config, sources)


def _read_file(path: str | os.PathLike | None) -> dict[str, Any]:
    if not path:
        return {}
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None


def _read_from_file(
    by_name: Mapping[str, dataclasses.Field], name: str, value: Any, path: str
) -> Any:
    """One setting of the file. A setting's line below a [table] header belongs to that table
    (`minibinder access-code >> FILE` after a [warm_pool] does that): the error says so."""
    try:
        return _read(by_name[name], value, False)
    except ConfigError:
        misplaced = [key for key in value if key in by_name] if isinstance(value, dict) else []
        if not misplaced:
            raise
        raise ConfigError(
            f"{misplaced[0]}: in {path} this line sits inside the [{name}] table, because "
            f"every line after a [table] header belongs to that table; move it above [{name}] "
            "(settings first, tables last)"
        ) from None
