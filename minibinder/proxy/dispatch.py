"""Which session a `/user/<id>/…` request goes to, decided inside the WSGI guards (so host,
listener, origin and access rules apply to session traffic exactly as to pages).

Nothing is relayed here. The front (front.py) runs the guards for each session request without
a thread, and relays the request itself once this middleware named its Hop. Requests that reach
the app behind the front are minibinder's own pages inside a session (`helper_path`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from html import escape
from typing import NamedTuple

from ..wsgi import StartResponse, reply
from .headers import raw_request_path
from .routes import BadRoute, RouteTable, split_route

HOP = "minibinder.hop"  # environ key: the Hop, once a request is to be relayed to a session
DECIDE_ONLY = "minibinder.decide_only"  # environ key: set by the front, which relays itself

SessionHelper = Callable[[dict, StartResponse, str, str], Iterable[bytes]]


class Hop(NamedTuple):
    """Where one request goes: the session, its backend, the raw path to ask for."""

    session_id: str
    target: str
    raw_path: str


def error_html(title: str, detail: str, home: str = "/") -> bytes:
    return (
        f"<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport "
        f"content='width=device-width,initial-scale=1'><title>{escape(title)}</title>"
        f"<body style='font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;"
        f"padding:0 1rem'><h1>{escape(title)}</h1><p>{escape(detail)}</p>"
        f"<p><a href='{escape(home)}'>Launch a repository</a></p></body></html>"
    ).encode()


def error_page(start_response: StartResponse, status: str, title: str, detail: str) -> list[bytes]:
    return reply(start_response, status, "text/html; charset=utf-8", error_html(title, detail))


class SessionDispatch:
    """WSGI middleware: `/user/<id>/…` is decided here, everything else goes to `app`.

    `helper` answers `/user/<id>/<helper_path>…` itself (minibinder's own pages inside a
    session).
    """

    def __init__(
        self,
        app: Callable,
        routes: RouteTable,
        helper: SessionHelper | None = None,
        helper_path: str = "",
    ):
        self.app, self.routes = app, routes
        self.helper, self.helper_path = helper, helper_path

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        if not environ.get("PATH_INFO", "").startswith("/user/"):
            return self.app(environ, start_response)
        raw_path = raw_request_path(environ)
        try:
            route = split_route(raw_path)
        except BadRoute as error:
            return error_page(start_response, "400 Bad Request", "Bad path", str(error))
        target = self.routes.lookup(route[0]) if route else None
        if route is None or target is None:
            return error_page(
                start_response,
                "404 Not Found",
                "No session here",
                "This session has ended or never existed. Sessions stop after a "
                "while without activity; launch the repository again.",
            )
        session_id = route[0]
        inside = raw_path.split("?", 1)[0][len(f"/user/{session_id}/") :]
        if self.helper and self.helper_path and inside.startswith(self.helper_path):
            if environ.get(DECIDE_ONLY):
                return []  # answered by the app, behind the front
            return self.helper(environ, start_response, session_id, inside[len(self.helper_path) :])
        # The session is served under the same root as minibinder (SCRIPT_NAME: a path prefix).
        environ[HOP] = Hop(session_id, target, environ.get("SCRIPT_NAME", "") + raw_path)
        if environ.get(DECIDE_ONLY):
            return []
        return error_page(
            start_response,
            "502 Bad Gateway",
            "Sessions are relayed by `minibinder serve`",
            "This server runs minibinder's pages without its front, which relays sessions.",
        )
