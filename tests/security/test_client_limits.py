"""One client address cannot take every seat, build slot or thread: sessions, builds and open
event streams are counted per client, refused with a `failed` event (the launch page: 429) and
Retry-After naming the limit, and another client (here: a second loopback address) is not
affected."""

from __future__ import annotations

import http.client
import json

from .conftest import launch
from .test_abandoned_builds import leave, open_stream

OTHER_CLIENT = "127.0.0.2"  # a second source address on loopback: another client


def request(serve, path: str, source: str = "127.0.0.1") -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", serve.port, timeout=300,
                                            source_address=(source, 0))  # fmt: skip
    connection.request("GET", path)
    return connection.getresponse()


def last_event(response: http.client.HTTPResponse) -> dict:
    event: dict = {}
    for raw in response:
        line = raw.decode().strip()
        if line.startswith("data: "):
            event = json.loads(line[6:])
            if event["phase"] in ("ready", "failed"):
                break
    response.close()
    return event


def test_one_client_cannot_take_every_seat(serve_with, git_server):
    git_server.create("sec/seat", {"README.md": "x"})
    serve = serve_with(max_sessions_per_client=2)
    for _ in range(2):
        launch(serve, "gh/sec/seat/HEAD")
    refused = request(serve, "/build/gh/sec/seat/HEAD")
    assert refused.status == 200 and int(refused.headers["Retry-After"]) > 0
    event = last_event(refused)  # an event BinderHub's clients show, as BinderHub sends it
    assert event["phase"] == "failed" and "max_sessions_per_client = 2" in event["message"]
    page = request(serve, "/v2/gh/sec/seat/HEAD")
    assert page.status == 429 and "max_sessions_per_client = 2" in page.read().decode()
    # Another address is its own client.
    assert last_event(request(serve, "/build/gh/sec/seat/HEAD", OTHER_CLIENT))["phase"] == "ready"


def test_one_client_cannot_queue_every_build(serve_with, build_config, git_server):
    base = build_config.base_images[build_config.default_python]
    for name in ("sec/build-a", "sec/build-b"):
        git_server.create(name, {"Dockerfile": f"FROM {base}\nRUN sleep 300 # {name}\n"})
    serve = serve_with(max_builds_per_client=1)
    running = open_stream(serve, "gh/sec/build-a/HEAD", "RUN sleep 300")
    refused = last_event(request(serve, "/build/gh/sec/build-b/HEAD"))
    assert refused["phase"] == "failed" and "max_builds_per_client = 1" in refused["message"]
    assert refused["retry_after"] > 0
    other = request(serve, "/build/gh/sec/build-b/HEAD", OTHER_CLIENT)
    assert other.status == 200
    other.close()
    leave(running)


def test_one_client_cannot_hold_every_stream(serve_with, build_config, git_server):
    base = build_config.base_images[build_config.default_python]
    git_server.create("sec/streams", {"Dockerfile": f"FROM {base}\nRUN sleep 300\n"})
    serve = serve_with(max_streams_per_client=2, max_builds_per_client=0)
    held = [open_stream(serve, "gh/sec/streams/HEAD", "RUN sleep 300") for _ in range(2)]
    refused = request(serve, "/build/gh/sec/streams/HEAD")
    assert refused.status == 200 and int(refused.headers["Retry-After"]) > 0
    event = last_event(refused)
    assert event["phase"] == "failed" and "max_streams_per_client = 2" in event["message"]
    other = request(serve, "/build/gh/sec/streams/HEAD", OTHER_CLIENT)
    assert other.status == 200
    other.close()
    for sock in held:
        leave(sock)
