"""A build nobody waits for any more is given up while it waits for a slot and stopped while it
runs, unless another request follows it."""

from __future__ import annotations

import http.client
import json
import socket

from minibinder.web.api import KEEPALIVE_SECONDS

from .conftest import wait_for


def open_stream(serve, spec: str, until: str) -> socket.socket:
    """Start `/build/<spec>` and read events until one contains `until`; keep it open and
    return its socket (to leave, the test shuts it down: the front sees the connection close
    and tells the stream, which ends within a second)."""
    connection = http.client.HTTPConnection("127.0.0.1", serve.port, timeout=120)
    connection.request("GET", f"/build/{spec}")
    response = connection.getresponse()
    while True:
        line = response.readline().decode()
        assert line, "the stream ended early"
        if line.startswith("data: ") and until in json.loads(line[6:]).get("message", ""):
            sock = connection.sock
            response.close()
            return sock


def last_event(serve, name: str) -> dict:
    """The last event of the build of repository `name` (its slug is in the log's name)."""
    for log in (serve.data_dir / "builds").glob(f"*-{name.replace('/', '-')}-*.log"):
        lines = [line for line in log.read_text().splitlines() if line.strip()]
        if lines:
            return json.loads(lines[-1])
    return {}


def leave(sock: socket.socket) -> None:
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def message_of(serve, name: str) -> str:
    return last_event(serve, name).get("message", "")


def test_builds_nobody_waits_for_are_stopped_and_given_up(serve_with, build_config, git_server):
    base = build_config.base_images[build_config.default_python]
    git_server.create("sec/slow", {"Dockerfile": f"FROM {base}\nRUN sleep 300\n"})
    git_server.create("sec/queued", {"Dockerfile": f"FROM {base}\nRUN sleep 300\n"})
    serve = serve_with(max_concurrent_builds=1)
    running = open_stream(serve, "gh/sec/slow/HEAD", "RUN sleep 300")
    waiting = open_stream(serve, "gh/sec/queued/HEAD", "Waiting for a free build slot")
    # Each departure is noticed when the front sees the connection close, not at the next
    # keepalive comment (25 s: it was 52 s for both), then acted on.
    noticed = KEEPALIVE_SECONDS / 2
    leave(waiting)  # the second requester leaves while queued
    wait_for(
        lambda: "cancelled while waiting" in message_of(serve, "sec/queued"),
        noticed,
        message="the queued build to be given up",
    )
    leave(running)  # the first leaves during its long step
    wait_for(
        lambda: "nobody is waiting" in message_of(serve, "sec/slow"),
        noticed,
        message="the running build to be stopped",
    )
    assert last_event(serve, "sec/slow")["phase"] == "failed"
