"""Which pages answer on which listener (origin): the operator's pages only on their own
listener (`admin_bind`), never on the one that serves session content, and nothing else there.

Session content is untrusted HTML and JavaScript; a browser lets it read anything on its own
origin. An origin is scheme, host and port, so a second port is a second origin, even for a
workshop VM reached only by its IP address.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..config import Config
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
        path = environ.get("PATH_INFO", "")
        operator = path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")
        if environ.get(ON_ADMIN_LISTENER):
            if operator or path.startswith("/static/"):
                return self.app(environ, start_response)
            if path in ("", "/"):
                start_response("302 Found", [("Location", "/admin/"), ("Content-Length", "0")])
                return [b""]
            return reply(start_response, "404 Not Found", "text/plain; charset=utf-8",
                         b"Only the operator's pages are here: /admin/\n")  # fmt: skip
        if operator:
            message = (
                "The operator's pages have their own address (admin_bind): port "
                f"{self.admin_port}, path /admin/. They are never served next to session "
                "content.\n"
            )
            return reply(start_response, "404 Not Found", "text/plain; charset=utf-8",
                         message.encode())  # fmt: skip
        return self.app(environ, start_response)
