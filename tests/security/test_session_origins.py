"""Sessions on origins of their own (`session_domain`; here `localhost`, which browsers send to
this machine): in a real browser, a hostile session's page cannot read another session the user
has open, by its origin, by its path on the hostile origin, or by the main address; and each
session's address answers only for that session."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlencode

import websocket

from minibinder.store import Store

from ..support.browser import chromium
from ..support.session_backends import SessionBackend
from .conftest import launch

HOSTILE = "badbadbadbadbad0"


def get(serve, path: str, host: str) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", serve.port, timeout=30)
    connection.request("GET", path, headers={"Host": host})
    return connection.getresponse()


def kernel_channels_open(serve, ready: dict, session_id: str) -> None:
    host = f"{session_id}.localhost:{serve.port}"
    connection = http.client.HTTPConnection("127.0.0.1", serve.port, timeout=30)
    headers = {"Host": host, "Authorization": f"token {ready['token']}"}
    connection.request("POST", f"/user/{session_id}/api/kernels", body="{}", headers=headers)
    response = connection.getresponse()
    assert response.status == 201, response.read()
    kernel = json.loads(response.read())["id"]
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{serve.port}/user/{session_id}/api/kernels/{kernel}/channels",
        host=host,
        origin=f"http://{host}",
        timeout=30,
        header=[f"Authorization: token {ready['token']}"],
    )
    ws.close()


def test_a_session_cannot_read_another_through_the_browser(tmp_path, serve_with, git_server):
    git_server.create("sec/victim", {"README.md": "x"})
    data = tmp_path / "data"
    hostile = SessionBackend(data, HOSTILE, "hostile")
    try:
        hostile.add_route(Store(data / "minibinder.sqlite"))
        serve = serve_with(session_domain="localhost", idle_timeout=86400)
        victim = launch(serve, "gh/sec/victim/HEAD")
        victim_id = victim["url"].rstrip("/").rsplit("/", 1)[-1]
        assert victim["url"] == f"http://{victim_id}.localhost:{serve.port}/user/{victim_id}/"
        with chromium(tmp_path / "profile") as browser:
            page = browser.new_page()
            page.goto(f"{victim['url']}lab?token={victim['token']}")  # the user's own session
            page.wait_for_load_state()
            own = page.evaluate("fetch('api/contents').then(r => r.status)")
            assert own == 200  # signed in: its cookie opens its API on its own origin
            query = urlencode(
                {
                    "url": victim["url"],
                    "path": f"/user/{victim_id}/",
                    "main": f"{serve.url}/user/{victim_id}/",
                }
            )
            page.goto(
                f"http://{HOSTILE}.localhost:{serve.port}/user/{HOSTILE}/neighbour.html?{query}"
            )
            page.wait_for_function("document.getElementById('out').textContent.length > 0")
            outcome = json.loads(page.locator("#out").text_content())
        # Its kernels work on its own origin (Jupyter checks Origin against Host).
        kernel_channels_open(serve, victim, victim_id)
    finally:
        hostile.remove()
    assert outcome["its own origin"].startswith("blocked"), outcome
    assert outcome["this origin"].startswith("404 "), outcome
    assert outcome["main origin"].startswith("blocked"), outcome  # redirected, then CORS


def test_each_session_address_answers_only_for_its_session(serve_with, git_server):
    serve = serve_with(session_domain="localhost")
    session = "0123456789abcdef"
    here = f"{session}.localhost:{serve.port}"
    assert get(serve, "/admin/", here).status == 404
    assert get(serve, "/v2/gh/sec/victim/HEAD", here).status == 404
    assert get(serve, "/user/fedcba9876543210/api", here).status == 404
    assert get(serve, "/", here).getheader("Location") == f"/user/{session}/"
    assert get(serve, "/static/session_notice.js", here).status == 200
    moved = get(serve, f"/user/{session}/lab/tree?x=1", f"127.0.0.1:{serve.port}")
    assert moved.status == 302
    assert moved.getheader("Location") == f"http://{here}/user/{session}/lab/tree?x=1"
    assert get(serve, "/", f"notasession.localhost:{serve.port}").status == 400
    assert get(serve, "/", f"{session}.localhost:1").status == 400  # not this port
