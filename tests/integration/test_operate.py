"""Running it for real: behind a proxy the operator trusts, the client's address and scheme come
from its forwarding headers; from anybody else those headers are ignored."""

from __future__ import annotations

import http.client
import json

from minibinder.store import Store

from .conftest import launch

CLIENT = "198.51.100.23"  # a documentation address: only ever a header's text here


def stream(serve, path: str, headers: dict, source: str = "127.0.0.1") -> tuple[int, list]:
    connection = http.client.HTTPConnection("127.0.0.1", serve.port, timeout=300,
                                            source_address=(source, 0))  # fmt: skip
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    received = []
    for raw in response:
        line = raw.decode().strip()
        if line.startswith("data: "):
            received.append(json.loads(line[6:]))
            if received[-1]["phase"] in ("ready", "failed"):
                break
    connection.close()
    return response.status, received


def test_a_trusted_proxy_names_the_client(serve_with, git_server):
    git_server.create("ops/forwarded", {"README.md": "x"})
    serve = serve_with(trusted_proxies=["127.0.0.1"], max_sessions_per_client=1)
    path = "/build/gh/ops/forwarded/HEAD"
    forwarded = {"X-Forwarded-For": f"6.6.6.6, {CLIENT}", "X-Forwarded-Proto": "https"}
    status, received = stream(serve, path, forwarded)
    assert status == 200 and received[-1]["phase"] == "ready"
    assert received[-1]["url"].startswith("https://")  # the scheme the browser used
    # Another forwarded client is another client for the per-client limits.
    _, other = stream(serve, path, {"X-Forwarded-For": "198.51.100.24"})
    assert other[-1]["phase"] == "ready"
    # The same client again is over its limit of one session.
    status, _ = stream(serve, path, forwarded)
    assert status == 429
    # From an address that is not a trusted proxy, forwarding headers mean nothing.
    claims = {"X-Forwarded-For": "198.51.100.99", "X-Forwarded-Proto": "https"}
    _, untrusted = stream(serve, path, claims, source="127.0.0.2")
    assert untrusted[-1]["url"].startswith("http://")
    # A trusted proxy sending nonsense gets a clear 400.
    status, _ = stream(serve, path, {"X-Forwarded-For": "<script>"})
    assert status == 400
    clients = [row["client_ip"] for row in
               Store(serve.data_dir / "minibinder.sqlite").launches()]  # fmt: skip
    assert clients.count(CLIENT) == 1 and "198.51.100.24" in clients and "127.0.0.2" in clients
    assert "6.6.6.6" not in clients and "198.51.100.99" not in clients


def test_forwarding_headers_are_ignored_without_trusted_proxies(serve_with, git_server):
    git_server.create("ops/plain", {"README.md": "x"})
    serve = serve_with()
    ready = launch(serve, "gh/ops/plain/HEAD")
    assert ready["url"].startswith("http://")
    _, received = stream(serve, "/build/gh/ops/plain/HEAD",
                         {"X-Forwarded-For": CLIENT, "X-Forwarded-Proto": "https"})  # fmt: skip
    assert received[-1]["url"].startswith("http://")  # gunicorn's own trust of loopback is off
    clients = [row["client_ip"] for row in Store(serve.data_dir / "minibinder.sqlite").launches()]
    assert CLIENT not in clients
