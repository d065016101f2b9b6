"""Which pages answer on which listener (origin): the operator's pages only on their own
listener (`admin_bind`), never on the one that serves session content, and nothing else there.

Session content is untrusted HTML and JavaScript; a browser lets it read anything on its own
origin. An origin is scheme, host and port, so a second port is a second origin, even for a
workshop VM reached only by its IP address.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from ..config import Config
from ..proxy.headers import raw_request_path
from ..proxy.routes import session_of_host, session_url
from ..proxy.wire import canonical_path
from ..wsgi import StartResponse, reply
from .hosts import ON_ADMIN_LISTENER, port_of

ADMIN_PREFIX = "/admin"


class ListenerRouting:
    """Behind HostCheck, which noted the listener each request came in on."""

    def __init__(self, app: Callable, config: Config):
        self.app = app
        self.admin_port = port_of(config.admin_address)
        self.separate = self.admin_port != port_of(config.bind)

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        if not self.separate:
            return self.app(environ, start_response)
        # The front hands PATH_INFO over canonical already; read the same form here whoever
        # called, so routing and this decision can never see two paths (`//admin/`).
        path = environ["PATH_INFO"] = canonical_path(environ.get("PATH_INFO", ""))
        operator = path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")
        if environ.get(ON_ADMIN_LISTENER):
            if operator or path.startswith("/static/"):
                return self.app(environ, start_response)
            if path in ("", "/"):
                location = environ.get("SCRIPT_NAME", "") + "/admin/"
                start_response("302 Found", [("Location", location), ("Content-Length", "0")])
                return [b""]
            return reply(
                start_response,
                "404 Not Found",
                "text/plain; charset=utf-8",
                b"Only the operator's pages are here: /admin/\n",
            )
        if operator:
            message = (
                "The operator's pages have their own address (admin_bind): port "
                f"{self.admin_port}, path /admin/. They are never served next to session "
                "content.\n"
            )
            return reply(
                start_response, "404 Not Found", "text/plain; charset=utf-8", message.encode()
            )
        return self.app(environ, start_response)


class SessionOrigins:
    """With `session_domain`, each session has an origin of its own, `<id>.<domain>`: there,
    only that session's path (and the static files its pages load) answers; on the main
    address, session paths are sent to their own origin. A session's page can then read
    neither minibinder's pages nor another session's, whatever the browser holds."""

    def __init__(self, app: Callable, config: Config):
        self.app, self.domain = app, config.session_domain

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        if not self.domain or environ.get(ON_ADMIN_LISTENER):
            return self.app(environ, start_response)
        path = environ.get("PATH_INFO", "")
        own = session_of_host(environ.get("HTTP_HOST", ""), self.domain)
        if own:
            if path.startswith((f"/user/{own}/", "/static/")) or path == "/favicon.ico":
                return self.app(environ, start_response)
            if path in ("", "/", f"/user/{own}"):
                return _redirect(start_response, f"{environ.get('SCRIPT_NAME', '')}/user/{own}/")
            return reply(
                start_response,
                "404 Not Found",
                "text/plain; charset=utf-8",
                b"This address belongs to one session; only its own pages are here.\n",
            )
        match = _SESSION_PATH.match(path)
        if not match:
            return self.app(environ, start_response)
        if environ.get("REQUEST_METHOD") in ("GET", "HEAD") and not environ.get("HTTP_UPGRADE"):
            main = (
                f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}"
                f"{environ.get('SCRIPT_NAME', '')}/"
            )
            query = environ.get("QUERY_STRING", "")
            rest = raw_request_path(environ).split("?", 1)[0][len(f"/user/{match.group(1)}/") :]
            location = session_url(main, match.group(1), self.domain) + rest
            return _redirect(start_response, location + (f"?{query}" if query else ""))
        return reply(
            start_response,
            "404 Not Found",
            "text/plain; charset=utf-8",
            b"Sessions are served on their own addresses (<id>." + self.domain.encode() + b").\n",
        )


_SESSION_PATH = re.compile(r"^/user/([0-9a-f]{16})(/|$)")


def _redirect(start_response: StartResponse, location: str) -> list[bytes]:
    start_response("302 Found", [("Location", location), ("Content-Length", "0")])
    return [b""]
