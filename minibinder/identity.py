"""This installation's identity, kept in its data directory: the instance id that labels its
containers, and the operator's admin token; and who a signed-in user is allowed to be."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import tempfile
from collections.abc import Sequence

from .config import Config

# Labels every container, image and network of one installation.
INSTANCE_LABEL = "minibinder.instance"
# On an image: when the commit it was built from was committed (kept work goes back only to
# the same or a newer commit)
COMMIT_TIME_LABEL = "minibinder.commit-time"


def _kept(config: Config, name: str, make: str) -> str:
    """A value made once and kept in the data directory (0600). Two processes that ask at
    once agree: the file appears whole (linked from a finished temporary file) or not at all,
    so none reads it half written and none overwrites the other's."""
    path = config.data_path / name
    if not path.exists():
        config.data_path.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{name}-", dir=config.data_path)
        try:
            with os.fdopen(handle, "w") as out:
                out.write(make)
            with contextlib.suppress(FileExistsError):  # another process was first: its wins
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
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


def user_allowed(name: str, users: Sequence[str], domains: Sequence[str]) -> bool:
    """Anyone the proxy names when no allowlist is set; else listed users or e-mail domains."""
    if not users and not domains:
        return True
    name = name.strip().lower()
    if name in {user.lower() for user in users}:
        return True
    return "@" in name and name.rsplit("@", 1)[1] in {d.lower().lstrip("@") for d in domains}
