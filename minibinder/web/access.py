"""Who may launch: everybody (`access = "open"`, mybinder.org's way), people who know the
workshop's code (`"code"`), or people the lab's authenticating proxy names (`"header"`).

Sessions are not guarded here: each has its own token already. What is guarded is what starts
work: the home page, launch pages and the event stream. Pure helpers first (signing the
cookie, allowlists; the code's hash is in `identity`), then the WSGI guard.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterable
from urllib.parse import quote

from werkzeug.http import parse_cookie

from ..config import Config
from ..identity import user_allowed
from ..wsgi import StartResponse, reply
from .clients import PEER, is_trusted, trusted_networks
from .hosts import ON_ADMIN_LISTENER

ACCESS_COOKIE = "minibinder-access"
USER = "minibinder.user"  # environ key: the name the authenticating proxy gave
COOKIE_DAYS = 7
OPEN_PATHS = ("/static/", "/user/", "/access")
# /agent/report: agents sign their reports with the cluster key (web/agents.py).
OPEN_EXACT = (
    "/health", "/versions", "/metrics", "/favicon.ico", "/badge_logo.svg", "/agent/report",
)  # fmt: skip


def sign(value: str, secret: str, now: float | None = None) -> str:
    """A cookie value that says `value` until it expires, unforgeable without `secret`."""
    expires = int((now or time.time()) + COOKIE_DAYS * 86400)
    payload = f"{value}.{expires}"
    mac = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return f"{payload}.{mac}"


def verified(cookie: str, secret: str, now: float | None = None) -> str | None:
    """The value a signed cookie carries, or None (forged, tampered, expired)."""
    payload, _, mac = cookie.rpartition(".")
    expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    if not payload or not hmac.compare_digest(mac.encode(), expected.encode()):
        return None
    value, _, expires = payload.rpartition(".")
    if not expires.isdigit() or int(expires) < (now or time.time()):
        return None
    return value


def safe_next(path: str) -> str:
    """Where to go after the form: a path on this server, never elsewhere."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


class AccessControl:
    """WSGI middleware behind the Host check."""

    def __init__(self, app: Callable, config: Config, secret: str):
        self.app, self.config, self.secret = app, config, secret
        self.trusted = trusted_networks(config.trusted_proxies)
        self.header_key = "HTTP_" + config.auth_header.upper().replace("-", "_")

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        mode = self.config.access
        if environ.get(ON_ADMIN_LISTENER):  # the admin token (or admin_users) decides there
            if mode == "header":
                self._identify(environ)
            return self.app(environ, start_response)
        if mode == "header":
            refusal = self._identify(environ)
            if refusal and not self._open(environ):
                return reply(
                    start_response, "403 Forbidden", "text/plain; charset=utf-8", refusal.encode()
                )
            return self.app(environ, start_response)
        if mode == "open" or self._open(environ):
            return self.app(environ, start_response)
        cookie = parse_cookie(environ.get("HTTP_COOKIE", "")).get(ACCESS_COOKIE, "")
        if cookie and verified(cookie, self.secret) == "code":
            return self.app(environ, start_response)
        path = environ.get("PATH_INFO", "")
        if path.startswith("/build/"):  # the API: say so, do not redirect a script
            message = b"This server asks for an access code: open its home page first.\n"
            return reply(start_response, "401 Unauthorized", "text/plain; charset=utf-8", message)
        query, root = environ.get("QUERY_STRING", ""), environ.get("SCRIPT_NAME", "")
        target = quote(root + path + (f"?{query}" if query else ""), safe="")
        start_response(
            "302 Found", [("Location", f"{root}/access?next={target}"), ("Content-Length", "0")]
        )
        return [b""]

    def _open(self, environ: dict) -> bool:
        path = environ.get("PATH_INFO", "")
        return path in OPEN_EXACT or path.startswith(OPEN_PATHS)

    def _identify(self, environ: dict) -> str:
        """Set the user's name from the trusted proxy's header; the refusal's text, or ""."""
        environ.pop(USER, None)
        name = environ.get(self.header_key, "").strip()
        if not is_trusted(environ.get(PEER, ""), self.trusted):
            return (
                "This server admits people its sign-in proxy names; this request did not "
                "come through it.\n"
            )
        if not name:
            return f"The sign-in proxy named nobody ({self.config.auth_header} is empty).\n"
        if len(name) > 200 or not name.isprintable():
            return f"The sign-in proxy's {self.config.auth_header} is not a user name.\n"
        environ[USER] = name  # who it is (the operator's pages check admin_users)...
        if not user_allowed(name, self.config.auth_users, self.config.auth_email_domains):
            return f"{name} may not launch here; ask the operator to add you.\n"
        return ""  # ...and that they may launch
