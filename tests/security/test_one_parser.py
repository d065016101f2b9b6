"""One HTTP parser per request (#18, items 1, 2 and 9): requests the front reads are never
re-sent to a second parser, so no framing trick hides one client's request in another's, a body
is read before a thread or a session connection is taken for it, and no client holds a thread.

Each of these failed against the front of #10, which wrote requests again to gunicorn: the
upgrade-with-a-body shapes smuggled the next client's request (400 `Invalid HTTP request line`
for another client's /versions), slow bodies held gunicorn's threads until /health stopped
answering, and gzip/xchunked codings and bad chunks reached the app before their 400.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.request

import pytest
import websocket

from minibinder.store import Store

from ..support.other_clients import SecondClient, connect, get_from
from ..support.serving import ServeProcess, write_config
from ..support.session_backends import SessionBackend
from . import corpus

SESSION = "0be9a55e0be9a55e"
BODY_SECONDS, PER_CLIENT = 3, 300


@pytest.fixture(scope="module")
def front(tmp_path_factory, docker):
    folder = tmp_path_factory.mktemp("one-parser")
    data = folder / "data"
    config = write_config(
        folder / "minibinder.toml",
        data,
        idle_timeout=86400,
        cull_interval=3600,
        request_body_timeout=BODY_SECONDS,
        max_connections_per_client=PER_CLIENT,
    )
    backend = SessionBackend(data, SESSION, "S")
    backend.add_route(Store(data / "minibinder.sqlite"))
    serve = ServeProcess(config, folder / "serve.log").start()
    serve.backend = backend
    yield serve
    serve.stop()
    backend.remove()


def exchange(serve, text: str, source: str = "127.0.0.1", wait: float = 10) -> bytes:
    """Send `text` on a new connection and read until the server closes it (or `wait`)."""
    payload = text.replace("HOST", f"127.0.0.1:{serve.port}").encode("latin-1")
    received = b""
    with connect(serve, source) as sock:
        sock.sendall(payload)
        sock.settimeout(wait)
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
    return received


def statuses(answer: bytes) -> list[str]:
    return re.findall(r"^HTTP/1\.[01] (\d{3})", answer.decode("latin-1"), re.MULTILINE)


def app_saw(serve, marker: str) -> bool:
    """Whether a request whose path holds `marker` reached the app (its access-log line)."""
    return marker in serve.log_file.read_text(errors="replace")


def front_counts(serve) -> dict[str, float]:
    text = urllib.request.urlopen(f"{serve.url}/metrics", timeout=10).read().decode()
    counts = {}
    for name in ("app_threads_busy", "upstream_connections", "client_connections"):
        match = re.search(rf"^minibinder_front_{name} (\S+)$", text, re.MULTILINE)
        counts[name] = float(match.group(1)) if match else -1.0
    return counts


@pytest.mark.parametrize("where", ["page", "session"])
@pytest.mark.parametrize("shape", sorted(corpus.framing_shapes()))
def test_framing_a_second_parser_could_misread_is_refused(front, shape, where):
    marker = f"probe-{abs(hash((shape, where))):x}"
    path = f"/{marker}" if where == "page" else f"/user/{SESSION}/{marker}"
    answer = exchange(front, corpus.framing_shapes()[shape].replace("PATH", path))
    assert statuses(answer) == ["400"], (shape, answer[:300])
    assert b"Connection: close" in answer
    assert not app_saw(front, marker), shape
    assert not any(marker in seen for seen in front.backend.requests()), shape


def test_an_upgrade_whose_body_is_withheld_never_swallows_the_next_client(front):
    """The reproducer of #18: the next clients' /versions were read as that body."""
    answers = [  # each answered before the next client asks
        exchange(
            front,
            "GET /health HTTP/1.1\r\nHost: HOST\r\nConnection: Upgrade\r\nUpgrade: "
            "foo\r\nContent-Length: 5\r\n\r\n",
            "127.0.0.3",
            wait=3,
        )
        for _ in range(5)
    ]
    for _ in range(20):
        status, body = get_from(front, "127.0.0.2", "/versions")
        assert status == 200 and json.loads(body)["minibinder"], body[:200]
    assert all(statuses(answer) == ["400"] for answer in answers), answers[0][:200]


def test_a_smuggled_request_is_never_answered_to_anyone(front):
    smuggled = f"GET /versions?smuggled HTTP/1.1\r\nHost: 127.0.0.1:{front.port}\r\n\r\n"
    answer = exchange(
        front,
        f"GET /badge_logo.svg HTTP/1.1\r\nHost: HOST\r\nConnection: "
        f"Upgrade\r\nUpgrade: foo\r\nContent-Length: {len(smuggled)}\r\n\r\n"
        f"{smuggled}",
    )
    assert statuses(answer) == ["400"]
    for _ in range(10):
        status, body = get_from(front, "127.0.0.2", "/badge_logo.svg")
        assert status == 200 and body.lstrip().startswith(b"<"), body[:100]
    assert not app_saw(front, "smuggled")


def test_a_body_that_breaks_off_closes_the_sessions_connection(front):
    """Past the read-ahead (1 MiB) an upload streams to the session; a chunk that cannot be
    read then is a 400, and that connection to the session is closed, never reused."""
    big = 1536 * 1024
    body = f"{big:x}\r\n{'x' * big}\r\nzz\r\n\r\n"  # a good chunk, then a size that is not
    answer = exchange(
        front,
        f"POST /user/{SESSION}/upload-broken HTTP/1.1\r\nHost: HOST\r\n"
        f"Transfer-Encoding: chunked\r\n\r\n{body}",
    )
    assert statuses(answer) == ["400"]
    peers = front.backend.peers()
    broken = [port for path, port in peers if path.endswith("/upload-broken")]
    assert broken, peers
    for _ in range(5):
        assert get_from(front, "127.0.0.2", f"/user/{SESSION}/hello")[0] == 200
    later = [port for path, port in front.backend.peers() if path.endswith("/hello")]
    assert later and not set(broken) & set(later[-5:])


def test_nothing_sent_after_a_handshake_reaches_the_session_before_its_101(front):
    sneaky = f"GET /user/{SESSION}/sneaky HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    answer = exchange(
        front,
        f"GET /user/{SESSION}/refuse/channels HTTP/1.1\r\nHost: HOST\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n{sneaky}",
    )
    assert statuses(answer) == ["403"]
    assert not any("sneaky" in path for path in front.backend.requests())
    # and once the session agreed, the same bytes are WebSocket data, as they should be
    ws = websocket.create_connection(f"ws://127.0.0.1:{front.port}/user/{SESSION}/ws", timeout=10)
    ws.send("after the 101")
    assert ws.recv() == "after the 101"
    ws.close()


def served(path: str, status: int, body: bytes) -> bool:
    """A page answers 200; an event stream for a bad spec ends in its `failed` event."""
    if path.startswith("/build/"):
        return status == 200 and b'"phase": "failed"' in body.replace(b'":"', b'": "')
    return status == 200


def test_slow_bodies_and_upgrade_closes_hold_no_thread_and_no_session_connection(front, measured):
    before = front_counts(front)
    second = SecondClient(
        front, ["/health", "/", "/build/gh/no-such-owner", f"/user/{SESSION}/hello"], served
    )
    second.start()
    slow = []
    for number in range(2000):  # a body of 100 bytes that never comes; past the cap: 429
        path = "/access" if number % 2 else f"/user/{SESSION}/api/contents/x"
        try:
            sock = connect(front)
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{front.port}\r\n"
                "Content-Length: 100\r\n\r\nx".encode()
            )
            sock.setblocking(False)
            slow.append(sock)
        except OSError:
            pass  # a full backlog: refused is fine too
    for number in range(1000):  # an upgrade with a body, closed at once
        path = "/access" if number % 2 else f"/user/{SESSION}/api/contents/y"
        with contextlib.suppress(OSError), connect(front) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{front.port}\r\nConnection: "
                "Upgrade\r\nUpgrade: foo\r\nContent-Length: 100\r\n\r\n".encode()
            )
    time.sleep(BODY_SECONDS + 2)  # the slow bodies' deadline passes
    for sock in slow:
        sock.close()
    second.stop.set()
    second.join(60)
    assert second.failures == []
    assert second.latencies
    deadline = time.monotonic() + 40  # kept-alive session connections expire after 15 s
    while time.monotonic() < deadline:
        after = front_counts(front)
        if after["app_threads_busy"] <= 1 and after["upstream_connections"] == 0:
            break
        time.sleep(1)
    assert after["app_threads_busy"] <= 1, after  # the /metrics request itself
    assert after["upstream_connections"] == 0, after
    assert not any("api/contents" in path for path in front.backend.requests())
    measured(
        "second client during 2,000 slow bodies and 1,000 upgrade-with-body closes: "
        f"{len(second.latencies)} requests, 0 failures, p99 {second.p99_ms():.1f} ms; "
        f"front before {before}, after {after}"
    )
