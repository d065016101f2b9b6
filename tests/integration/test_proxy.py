"""The proxy of `minibinder serve` (gunicorn) against test backends running as sessions."""

from __future__ import annotations

import hashlib
import http.client
import json
import time

import pytest
import websocket

from minibinder.store import Store

from ..support.serving import ServeProcess, write_config
from ..support.session_backends import SessionBackend

SESSION_A, SESSION_B, SESSION_DEAD = "a" * 16, "b" * 16, "d" * 16
MB = 1 << 20


@pytest.fixture(scope="module")
def proxy(tmp_path_factory, docker):
    folder = tmp_path_factory.mktemp("proxy")
    data = folder / "data"
    # Idle sessions would be culled: these must stay for the whole module.
    config = write_config(
        folder / "minibinder.toml",
        data,
        threads=32,
        idle_timeout=86400,
        cull_interval=3600,
        allowed_hosts=["binder.example:8585"],
    )
    backends = [
        SessionBackend(data, SESSION_A, "A"),
        SessionBackend(data, SESSION_B, "B"),
        SessionBackend(data, SESSION_DEAD, "dead", serve=False),
    ]
    store = Store(data / "minibinder.sqlite")
    for backend in backends:  # before serve starts: its first round adopts them
        backend.add_route(store)
    serve = ServeProcess(config, folder / "serve.log").start()
    serve.store, serve.a, serve.b = store, backends[0], backends[1]
    yield serve
    serve.stop()
    for backend in backends:
        backend.remove()


def request(proxy, method, path, body=None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response, data


def peak_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_routes_to_the_right_backend(proxy):
    assert request(proxy, "GET", f"/user/{SESSION_A}/hello")[1] == b"hello from A"
    assert request(proxy, "GET", f"/user/{SESSION_B}/hello")[1] == b"hello from B"


def peaks(proxy) -> dict[int, int]:
    """Peak RSS of every worker: whichever serves the request must not buffer the body."""
    return {pid: peak_rss_kib(pid) for pid in proxy.worker_pids()}


def grew_at_most(before: dict[int, int], after: dict[int, int]) -> int:
    return max(after[pid] - before.get(pid, after[pid]) for pid in after)


def test_streams_a_100_mb_download_without_buffering(proxy):
    before = peaks(proxy)
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=60)
    connection.request("GET", f"/user/{SESSION_A}/big?size={100 * MB}")
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("Content-Length") == str(100 * MB)
    received = 0
    while chunk := response.read(MB):
        received += len(chunk)
    connection.close()
    assert received == 100 * MB
    assert grew_at_most(before, peaks(proxy)) < 40 * 1024  # far below the 100 MB it relayed


def test_a_1_gb_unsized_page_streams_through_without_the_banner(proxy):
    before = peaks(proxy)
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=60)
    connection.request("GET", f"/user/{SESSION_A}/lab/huge?size={1024 * MB}")
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("Content-Length") is None
    received, first = 0, b""
    while chunk := response.read(MB):
        first = first or chunk
        received += len(chunk)
    connection.close()
    assert received == 1024 * MB and first.startswith(b"<p>xxx")  # untouched
    assert grew_at_most(before, peaks(proxy)) < 40 * 1024  # not held for the banner: flat
    small = request(proxy, "GET", f"/user/{SESSION_A}/lab/huge?size=4096")[1]
    assert b"session_notice.js" in small  # a page that fits still gets it


def test_streams_a_100_mb_upload_without_buffering(proxy):
    before = peaks(proxy)
    block = bytes(range(256)) * 4096  # 1 MiB
    expected = hashlib.sha256()
    for _ in range(100):
        expected.update(block)

    def body():
        for _ in range(100):
            yield block

    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=60)
    connection.request(
        "POST", f"/user/{SESSION_A}/upload", body=body(), headers={"Content-Length": str(100 * MB)}
    )
    result = json.loads(connection.getresponse().read())
    connection.close()
    assert result == {"bytes": 100 * MB, "sha256": expected.hexdigest()}
    assert grew_at_most(before, peaks(proxy)) < 40 * 1024


def test_chunked_upload(proxy):
    def body():
        yield b"first,"
        yield b"second"

    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)
    connection.request("POST", f"/user/{SESSION_A}/upload", body=body(), encode_chunked=True)
    result = json.loads(connection.getresponse().read())
    connection.close()
    assert result == {"bytes": 12, "sha256": hashlib.sha256(b"first,second").hexdigest()}


def test_hop_by_hop_headers_and_forwarding(proxy):
    response, data = request(
        proxy,
        "GET",
        f"/user/{SESSION_A}/headers?x=1",
        headers={
            "Host": "binder.example:8585",
            "Connection": "keep-alive, X-Client-Hop",
            "X-Client-Hop": "drop me",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Proxy-Authorization": "Basic eA==",
            "X-Forwarded-For": "6.6.6.6",
            "Cookie": "minibinder-admin=secret; _xsrf=abc; minibinder_other=x; username-h=y",
            "X-Kept": "yes",
        },
    )
    seen = {name.lower(): value for name, value in json.loads(data)["headers"]}
    assert seen["host"] == "binder.example:8585"
    assert seen["x-kept"] == "yes"
    for dropped in ("x-client-hop", "keep-alive", "te", "proxy-authorization"):
        assert dropped not in seen
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == "binder.example:8585"
    assert seen["cookie"] == "_xsrf=abc; username-h=y"
    assert json.loads(data)["path"] == f"/user/{SESSION_A}/headers?x=1"
    assert response.getheader("X-Backend-Hop") is None
    assert response.getheader("Keep-Alive") is None
    # A session sets cookies for its own path only: not for "/", minibinder's pages, another
    # session, nor with a Domain.
    own = f"/user/{SESSION_A}/"
    assert response.headers.get_all("Set-Cookie") == [
        f"b=2; Path={own}",
        "e=5",
        f"f=6; path={own}lab; HttpOnly",
    ]


def test_websocket_echo_with_subprotocol_and_binary_frames(proxy):
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{proxy.port}/user/{SESSION_A}/api/kernels/k/channels",
        subprotocols=["v1.kernel.websocket.jupyter.org"],
        timeout=10,
    )
    try:
        assert ws.getsubprotocol() == "v1.kernel.websocket.jupyter.org"
        ws.send("hello")
        assert ws.recv() == "hello"
        payload = bytes(range(256)) * 300
        ws.send_binary(payload)
        opcode, data = ws.recv_data()
        assert opcode == websocket.ABNF.OPCODE_BINARY and data == payload
        started = time.time()
        ws.ping(b"p")
        assert ws.recv_data_frame(control_frame=True)[1].opcode == websocket.ABNF.OPCODE_PONG
        assert time.time() - started < 5
    finally:
        ws.close()


def test_websocket_traffic_counts_as_activity(proxy):
    before = proxy.store.get_session(SESSION_B).last_activity
    ws = websocket.create_connection(f"ws://127.0.0.1:{proxy.port}/user/{SESSION_B}/ws")
    for _ in range(3):
        ws.send("x")
        ws.recv()
        time.sleep(2.2)
    ws.close()
    assert proxy.store.get_session(SESSION_B).last_activity > before


@pytest.mark.parametrize(
    "path",
    [
        f"/user/{SESSION_A}/%2e%2e/{SESSION_B}/hello",
        f"/user/{SESSION_A}/%2E%2E/{SESSION_B}/hello",
        f"/user/{SESSION_A}/../{SESSION_B}/hello",
        f"/user/{SESSION_A}/./../{SESSION_B}/hello",
        f"/user/{SESSION_A}/.%2e/{SESSION_B}/hello",
        f"/user/{SESSION_A}%2F..%2F{SESSION_B}/hello",
        f"/user/{SESSION_A}%2f{SESSION_B}/hello",
        f"/user/%2e%2e/user/{SESSION_B}/hello",
        f"/user/{SESSION_A}\\..\\{SESSION_B}/hello",
        f"/user/{SESSION_A}/..%5c{SESSION_B}/hello",
        f"/user/{SESSION_A[:-1]}%61/hello",
    ],
)
def test_paths_cannot_walk_into_another_session(proxy, path):
    before = [r for r in proxy.b.requests() if r.endswith("/hello")]
    response, data = request(proxy, "GET", path)
    assert response.status in (400, 404)
    assert b"hello from B" not in data
    assert [r for r in proxy.b.requests() if r.endswith("/hello")] == before


def test_unknown_session_gets_a_clean_page(proxy):
    response, data = request(proxy, "GET", "/user/0123456789abcdef/lab")
    assert response.status == 404
    assert b"This session has ended or never existed" in data


def test_dead_backend_answers_503_quickly(proxy):
    started = time.monotonic()
    response, data = request(proxy, "GET", f"/user/{SESSION_DEAD}/lab")
    assert response.status == 503 and b"not answering" in data
    assert time.monotonic() - started < 10  # refused connections must not hang the client


def test_error_statuses_pass_through_and_do_not_count_as_activity(proxy):
    session = proxy.store.get_session(SESSION_A)
    response, _ = request(proxy, "GET", f"/user/{SESSION_A}/status?code=404")
    assert response.status == 404
    assert proxy.store.get_session(SESSION_A).last_activity == session.last_activity


def test_a_body_until_close_and_an_interim_answer_come_through_whole(proxy):
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=30)
    for _ in range(2):  # the client's connection stays usable after each
        connection.request("GET", f"/user/{SESSION_A}/until-close")
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, b"all of it, then the end")
        connection.request("GET", f"/user/{SESSION_A}/early-hints")
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, b"after the hints")
    connection.close()
