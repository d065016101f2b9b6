"""Serving under a path (`public_url = "https://lab.example.edu/binder/"`), behind a web server
that passes the path on unchanged: the prefix moves from PATH_INFO to SCRIPT_NAME (so Flask's
links carry it), the raw path loses it for routing, and sessions are served under it too.
Outside the prefix nothing answers but a pointer to it."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..config import Config
from ..wsgi import StartResponse, reply


class PathPrefix:
    def __init__(self, app: Callable, config: Config):
        self.app, self.prefix = app, config.path_prefix

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        prefix = self.prefix
        if not prefix:
            return self.app(environ, start_response)
        path = environ.get("PATH_INFO", "")
        if path != prefix and not path.startswith(prefix + "/"):
            if path in ("", "/"):
                start_response("302 Found", [("Location", prefix + "/"), ("Content-Length", "0")])
                return [b""]
            message = f"minibinder is served under {prefix}/ here.\n".encode()
            return reply(start_response, "404 Not Found", "text/plain; charset=utf-8", message)
        environ["SCRIPT_NAME"] = prefix
        environ["PATH_INFO"] = path[len(prefix) :] or "/"
        for key in ("RAW_URI", "REQUEST_URI"):
            raw = environ.get(key)
            if raw and raw.startswith(prefix):
                environ[key] = raw[len(prefix) :] or "/"
        return self.app(environ, start_response)
