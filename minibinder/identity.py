"""This installation's identity, kept in its data directory: the instance id that labels its
containers, and the operator's admin token."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from .config import Config

# Labels every container, image and network of one installation.
INSTANCE_LABEL = "minibinder.instance"


def _kept(config: Config, name: str, make: str) -> str:
    path = config.data_path / name
    if not path.exists():
        config.data_path.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(make)
    return path.read_text().strip()


def instance_id(config: Config) -> str:
    """Several minibinders may share one Docker daemon; each adopts or removes only the
    containers labelled with its own id."""
    return _kept(config, "instance_id", secrets.token_hex(8))


def admin_token(config: Config) -> str:
    """The configured admin token, or one made once and kept in the data directory."""
    return config.admin_token or _kept(config, "admin_token", secrets.token_urlsafe(24))


def cookie_secret(config: Config) -> str:
    """Signs the access cookie; made once and kept in the data directory."""
    return _kept(config, "cookie_secret", secrets.token_hex(32))


def agent_key(config: Config) -> bytes:
    """The per-cluster key `minibinder agent` signs its reports with (swarm placement): made
    once and kept in the data directory, readable by minibinder only; never logged."""
    return _kept(config, "agent_key", secrets.token_hex(32)).encode()


ITERATIONS = 200_000


def hash_code(code: str, salt: str | None = None, iterations: int = ITERATIONS) -> str:
    """The form `access_code_hash` takes: pbkdf2_sha256$<iterations>$<salt>$<hash>."""
    salt = salt or secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", code.encode(), salt.encode(), iterations).hex()
    return f"pbkdf2_sha256${iterations}${salt}${digest}"


def code_matches(code: str, stored: str) -> bool:
    try:
        algorithm, iterations, salt, _ = stored.split("$")
        rounds = int(iterations)
    except ValueError:
        return False
    if algorithm != "pbkdf2_sha256":
        return False
    return hmac.compare_digest(hash_code(code, salt, rounds).encode(), stored.encode())
