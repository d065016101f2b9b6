"""Sessions are apart: one session's code cannot reach another session's server, and a kernel's
WebSocket opens only with that session's own token (never without one, never with another's)."""

from __future__ import annotations

import pytest
import websocket

from minibinder.store import Store

from ..support.jupyter import execute, start_kernel
from .conftest import launch

CONNECT = """
import socket
try:
    socket.create_connection(({host!r}, {port}), timeout=4).close()
    print("reached")
except OSError as error:
    print(type(error).__name__)
"""


def test_a_session_cannot_reach_another_sessions_server(serve_with, git_server):
    git_server.create("sec/neighbours", {"README.md": "x"})
    serve = serve_with()
    first, second = (launch(serve, "gh/sec/neighbours/HEAD") for _ in range(2))
    store = Store(serve.data_dir / "minibinder.sqlite")
    second_id = second["url"].rstrip("/").rsplit("/", 1)[-1]
    record = store.get_session(second_id)
    assert record is not None and record.target
    host, port = record.target.rsplit(":", 1)
    result = execute(first, start_kernel(first), CONNECT.format(host=host, port=int(port)))
    assert result["stdout"].strip() in ("timeout", "TimeoutError", "ConnectionRefusedError")


@pytest.mark.parametrize("credentials", ["none", "another session's token", "a made-up token"])
def test_a_kernel_websocket_needs_its_own_sessions_token(serve_with, git_server, credentials):
    git_server.create(f"sec/ws-{len(credentials)}", {"README.md": "x"})
    serve = serve_with()
    ready = launch(serve, f"gh/sec/ws-{len(credentials)}/HEAD")
    kernel = start_kernel(ready)
    header = {
        "none": [],
        "another session's token": [
            f"Authorization: token {launch(serve, f'gh/sec/ws-{len(credentials)}/HEAD')['token']}"
        ],
        "a made-up token": ["Authorization: token " + "x" * 32],
    }[credentials]
    url = f"{ready['url'].replace('http', 'ws', 1)}api/kernels/{kernel}/channels"
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(url, header=header, timeout=20)
    assert refused.value.status_code in (401, 403)
    # Its own token opens it.
    websocket.create_connection(
        url, header=[f"Authorization: token {ready['token']}"], timeout=20
    ).close()


def test_a_refused_websocket_handshake_is_answered_and_closed(serve_with, git_server):
    import socket
    import time
    import urllib.parse

    git_server.create("sec/ws-closed", {"README.md": "x"})
    serve = serve_with()
    ready = launch(serve, "gh/sec/ws-closed/HEAD")
    kernel = start_kernel(ready)
    path = urllib.parse.urlsplit(ready["url"]).path + f"api/kernels/{kernel}/channels"
    handshake = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{serve.port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    sockets = []
    for _ in range(20):
        sock = socket.create_connection(("127.0.0.1", serve.port), timeout=30)
        sock.sendall(handshake.encode())
        sockets.append(sock)
    started = time.monotonic()
    for sock in sockets:
        answer = b""
        while chunk := sock.recv(65536):  # until the server closes: it must, and soon
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 403"), answer[:200]
        sock.close()
    assert time.monotonic() - started < 30  # none is held open (it used to be, for minutes)
