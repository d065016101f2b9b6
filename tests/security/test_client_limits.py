"""One client cannot take every seat, build slot or thread: sessions, builds and open event
streams are counted per client (a browser, by its cookie; an address that sends none), refused
with a `failed` event (the launch page: 429) and Retry-After naming the limit, and another
client is not affected. Browsers behind one address (a classroom behind NAT) are clients of
their own, up to the address's room-sized share."""

from __future__ import annotations

import http.client
import json

from .test_abandoned_builds import leave, open_stream

OTHER_CLIENT = "127.0.0.2"  # a second source address on loopback: another client


def request(
    serve, path: str, source: str = "127.0.0.1", cookie: str = ""
) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection(
        "127.0.0.1", serve.port, timeout=300, source_address=(source, 0)
    )
    connection.request("GET", path, headers={"Cookie": cookie} if cookie else {})
    return connection.getresponse()


def a_browser(serve, spec: str, source: str = "127.0.0.1") -> str:
    """What a browser holds after the launch page: its anonymous, signed id cookie."""
    page = request(serve, f"/v2/{spec}", source)
    page.read()
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie, cookie
    return cookie.split(";", 1)[0]


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


def test_one_browser_cannot_take_every_seat_and_a_room_gets_its_share(serve_with, git_server):
    git_server.create("sec/seat", {"README.md": "x"})
    spec = "gh/sec/seat/HEAD"
    serve = serve_with(max_sessions_per_client=1, max_sessions_per_address=3)
    first = a_browser(serve, spec)
    assert last_event(request(serve, f"/build/{spec}", cookie=first))["phase"] == "ready"
    refused = request(serve, f"/build/{spec}", cookie=first)
    assert refused.status == 200 and int(refused.headers["Retry-After"]) > 0
    event = last_event(refused)  # an event BinderHub's clients show, as BinderHub sends it
    assert event["phase"] == "failed" and "max_sessions_per_client = 1" in event["message"]
    page = request(serve, f"/v2/{spec}", cookie=first)
    assert page.status == 429 and "max_sessions_per_client = 1" in page.read().decode()
    # Two more browsers behind the same address are clients of their own ...
    for _ in range(2):
        browser = a_browser(serve, spec)
        assert last_event(request(serve, f"/build/{spec}", cookie=browser))["phase"] == "ready"
    # ... up to the address's share: the fourth browser of the room is refused, politely.
    fourth = a_browser(serve, spec)
    event = last_event(request(serve, f"/build/{spec}", cookie=fourth))
    assert event["phase"] == "failed" and "max_sessions_per_address = 3" in event["message"]
    # A forged cookie is no browser: it counts as its address, which is full too.
    forged = first.split("=", 1)[0] + "=b-forged.9999999999.00"
    event = last_event(request(serve, f"/build/{spec}", cookie=forged))
    assert event["phase"] == "failed" and "max_sessions_per_address = 3" in event["message"]
    # Another address is its own room.
    other = a_browser(serve, spec, OTHER_CLIENT)
    assert last_event(request(serve, f"/build/{spec}", OTHER_CLIENT, other))["phase"] == "ready"


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
    # Without cookies the address is the client: a room, as many streams as it has seats.
    serve = serve_with(
        max_streams_per_client=2, max_builds_per_client=0, max_sessions_per_address=2
    )
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
