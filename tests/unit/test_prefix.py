"""Serving under public_url's path: what the prefix middleware hands on, and what it refuses."""

from __future__ import annotations

from minibinder.settings_load import load_config
from minibinder.web.prefix import PathPrefix

CONFIG = load_config(overrides={"public_url": "https://lab.example.edu/binder/"})


def call(path: str, raw: str | None = None) -> tuple[str, dict]:
    seen: dict = {}

    def app(environ, start_response):
        seen.update(environ)
        start_response("200 OK", [])
        return [b""]

    statuses = []
    environ = {"PATH_INFO": path, "RAW_URI": raw or path}
    PathPrefix(app, CONFIG)(environ, lambda status, headers: statuses.append((status, headers)))
    return statuses[0][0], seen or {"headers": dict(statuses[0][1])}


def test_the_prefix_moves_to_script_name():
    status, environ = call("/binder/v2/gh/o/r/HEAD", "/binder/v2/gh/o/r/HEAD?x=%2F")
    assert status == "200 OK" and environ["SCRIPT_NAME"] == "/binder"
    assert (
        environ["PATH_INFO"] == "/v2/gh/o/r/HEAD" and environ["RAW_URI"] == "/v2/gh/o/r/HEAD?x=%2F"
    )
    assert call("/binder")[1]["PATH_INFO"] == "/"


def test_outside_the_prefix_only_a_pointer():
    status, seen = call("/")
    assert status == "302 Found" and seen["headers"]["Location"] == "/binder/"
    assert call("/binderx/v2")[0] == "404 Not Found"
    assert call("/versions")[0] == "404 Not Found"
    assert CONFIG.path_prefix == "/binder"
    assert load_config(overrides={"public_url": "https://binder.example.org/"}).path_prefix == ""
