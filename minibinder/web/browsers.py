"""Who a browser is, for the per-client limits: an anonymous, signed, HttpOnly cookie minted on
the first page or launch it asks for. It says nothing about the person and opens nothing; it
only lets forty students behind one classroom address count as forty clients, and, with
keep_work = "browser", says whose kept work is whose (and who may delete it)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Request, Response, current_app, request

from ..sessions.admission import client_key
from .access import COOKIE_DAYS, USER, sign, verified

BROWSER_COOKIE = "minibinder-browser"  # "minibinder…": never forwarded to a session
_PREFIX = "b-"  # what a browser id looks like, so no other signed value passes for one


def browser_of(request: Request, secret: str) -> str:
    """The browser's id from its cookie, "" when it sent none (or a forged or expired one)."""
    value = verified(request.cookies.get(BROWSER_COOKIE, ""), secret) or ""
    return value if value.startswith(_PREFIX) else ""


def give_browser_cookie(request: Request, response: Response, secret: str) -> None:
    """Mint the cookie for a browser that has none (on pages and launches only)."""
    if browser_of(request, secret):
        return
    response.set_cookie(
        BROWSER_COOKIE,
        sign(_PREFIX + secrets.token_urlsafe(12), secret),
        max_age=COOKIE_DAYS * 86400,
        httponly=True,
        samesite="Lax",
        secure=request.scheme == "https",
        path=request.script_root or "/",
    )


@dataclass(frozen=True)
class Asker:
    """Who a request to launch comes from: the key the per-client limits count, the address,
    the user a sign-in proxy named and the browser's id."""

    client: str
    address: str
    user: str
    browser: str


def who_asks() -> Asker:
    address = request.remote_addr or ""
    user = request.environ.get(USER, "")
    browser = browser_of(request, current_app.config["MINIBINDER_COOKIE_SECRET"])
    return Asker(client_key(address, user, browser), address, user, browser)


def work_form_token(secret: str, owner: str) -> str:
    """The hidden field of the "Delete my kept work" form: tied to its owner and unguessable
    without the secret, so a page elsewhere cannot post the form for a visitor."""
    message = f"delete-kept-work\0{owner}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def cross_site(headers: Mapping[str, str], host_url: str) -> bool:
    """Whether a form post comes from another site: its browser says so (Sec-Fetch-Site), or
    its Origin is not this server's. A post without either (curl, an old browser) is judged by
    the form's token alone."""
    fetch_site = headers.get("Sec-Fetch-Site", "")
    if fetch_site and fetch_site not in ("same-origin", "none"):
        return True
    origin = headers.get("Origin", "")
    if not origin:
        return False
    ours = urlsplit(host_url)
    return origin.rstrip("/") != f"{ours.scheme}://{ours.netloc}"
