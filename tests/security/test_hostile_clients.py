"""Clients that try to starve the front (#10): slow headers, bodies that never end, idle
connections, too many connections, refused WebSocket upgrades by the thousand. Each is cut off
by its setting, and another client's requests keep answering throughout."""

from __future__ import annotations

import contextlib
import http.client
import resource
import socket
import time

import pytest
import websocket

from minibinder.store import Store

from ..support.other_clients import SecondClient, connect, get_from
from ..support.serving import ServeProcess, write_config
from ..support.session_backends import SessionBackend

SESSION = "7e57c11e27e57c11"
HEADER_SECONDS, BODY_SECONDS, IDLE_SECONDS, WEBSOCKET_IDLE_SECONDS = 2, 3, 3, 3
PER_CLIENT = 300  # per worker; two workers


@pytest.fixture(scope="module")
def front(tmp_path_factory, docker):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # this test holds thousands
    folder = tmp_path_factory.mktemp("front")
    data = folder / "data"
    config = write_config(
        folder / "minibinder.toml",
        data,
        idle_timeout=86400,
        cull_interval=3600,
        request_header_timeout=HEADER_SECONDS,
        request_body_timeout=BODY_SECONDS,
        idle_connection_timeout=IDLE_SECONDS,
        websocket_idle_timeout=WEBSOCKET_IDLE_SECONDS,
        max_connections_per_client=PER_CLIENT,
    )
    backend = SessionBackend(data, SESSION, "S")
    store = Store(data / "minibinder.sqlite")
    backend.add_route(store)
    serve = ServeProcess(config, folder / "serve.log").start()
    serve.backend = backend
    yield serve
    serve.stop()
    backend.remove()
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed `sock` (reading and dropping what it sent), or None."""
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return None
    except OSError:
        pass
    return time.monotonic() - started


def server_closed(sock: socket.socket) -> bool:
    """Whether the server has closed a non-blocking socket (after whatever it said)."""
    try:
        while sock.recv(65536):
            pass
    except BlockingIOError:
        return False
    except OSError:
        pass
    return True


def seen_by_session(serve) -> list[str]:
    return serve.backend.requests()


def test_slow_headers_are_cut_off_at_the_deadline(front):
    sock = connect(front)
    started = time.monotonic()
    text = f"GET /user/{SESSION}/slow-headers HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    with contextlib.suppress(OSError):
        for byte in text:  # 1 byte every 0.5 s: the whole head would take 30 s
            sock.sendall(bytes([byte]))
            time.sleep(0.5)
    sock.close()
    assert time.monotonic() - started < HEADER_SECONDS + 3
    assert not any("slow-headers" in path for path in seen_by_session(front))


def test_a_body_that_never_ends_is_cut_off(front):
    sock = connect(front)
    sock.sendall(
        f"POST /user/{SESSION}/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Length: 1000000\r\n\r\n".encode()
    )
    started = time.monotonic()
    with contextlib.suppress(OSError):
        for _ in range(60):
            sock.sendall(b"x" * 100)
            time.sleep(0.5)
    sock.close()
    assert time.monotonic() - started < BODY_SECONDS + 3


def test_a_connection_is_kept_alive_and_closed_when_idle(front):
    connection = http.client.HTTPConnection("127.0.0.1", front.port, timeout=30)
    used = set()
    for path in (f"/user/{SESSION}/hello", "/health", f"/user/{SESSION}/hello"):
        connection.request("GET", path)
        assert connection.getresponse().read()
        used.add(connection.sock)
    assert len(used) == 1  # kept alive across sessions and pages
    assert (closed_within(connection.sock, IDLE_SECONDS + 5) or 99) < IDLE_SECONDS + 3
    connection.close()


def test_a_silent_websocket_is_closed_and_a_pinging_one_stays(front):
    url = f"ws://127.0.0.1:{front.port}/user/{SESSION}/ws"
    silent = websocket.create_connection(url, timeout=30)
    pinging = websocket.create_connection(url, timeout=30)
    started = time.monotonic()
    while time.monotonic() - started < WEBSOCKET_IDLE_SECONDS + 3:
        pinging.ping(b"alive")
        time.sleep(0.5)
    pinging.send("still here")
    assert pinging.recv() == "still here"
    with pytest.raises((websocket.WebSocketConnectionClosedException, OSError)):
        silent.send("hello?")
        silent.recv()
    pinging.close()
    silent.close()


def test_connections_past_the_per_client_cap_are_refused_and_others_still_served(front):
    held, refused = [], 0
    for _ in range(3 * PER_CLIENT):
        sock = connect(front)
        sock.sendall(b"GET /user/")  # part of a head: held until the deadline
        held.append(sock)
    time.sleep(0.5)
    for sock in held:
        sock.settimeout(0.05)
        with contextlib.suppress(TimeoutError):
            if sock.recv(200).startswith(b"HTTP/1.1 429"):
                refused += 1
    assert 3 * PER_CLIENT - 2 * PER_CLIENT <= refused <= 3 * PER_CLIENT - PER_CLIENT
    assert get_from(front, "127.0.0.2", f"/user/{SESSION}/hello") == (200, b"hello from S")
    for sock in held:
        sock.close()


def test_2000_slow_header_connections_and_1000_refused_upgrades_do_not_starve_others(
    front, measured
):
    second = SecondClient(front, ["/health", f"/user/{SESSION}/hello"])
    second.start()
    slow, started = [], time.monotonic()
    for _ in range(2000):
        try:
            sock = connect(front)
            sock.setblocking(False)
            sock.send(b"G")
            slow.append(sock)
        except OSError:
            pass  # a full backlog: refused is fine too
    while time.monotonic() - started < HEADER_SECONDS + 1:  # a byte a second to each
        for sock in slow:
            with contextlib.suppress(OSError):
                sock.send(b"E")
        time.sleep(1)
    time.sleep(2)
    still_open = sum(not server_closed(sock) for sock in slow)
    for sock in slow:
        sock.close()
    assert still_open == 0, f"{still_open} slow connections outlived the header deadline"

    handshake = (
        f"GET /user/{SESSION}/refuse/channels HTTP/1.1\r\nHost: 127.0.0.1:{front.port}"
        "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    ).encode()
    answers = []
    for _ in range(10):  # 1,000 in batches of 100 at once
        batch = [connect(front) for _ in range(100)]
        for sock in batch:
            sock.sendall(handshake)
        for sock in batch:
            answer = b""
            sock.settimeout(30)
            with contextlib.suppress(OSError):
                while chunk := sock.recv(65536):  # until the server closes: it must
                    answer += chunk
            answers.append(answer)
            sock.close()
    second.stop.set()
    second.join(30)
    others = [answer[:60] for answer in answers if not answer.startswith(b"HTTP/1.1 403")]
    assert others == []
    assert second.failures == []
    measured(
        "second client during 2,000 slow-header connections and 1,000 refused upgrades: "
        f"{len(second.latencies)} requests, 0 failures, p99 {second.p99_ms():.1f} ms"
    )
