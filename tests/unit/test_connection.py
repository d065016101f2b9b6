"""The front's client connection, fed bytes through a fake transport: what llhttp makes of them
(typed events, in order), what is refused, and what is never parsed. Milliseconds, no sockets."""

from __future__ import annotations

import asyncio

import pytest

from minibinder.proxy.connection import Body, End, Failed, Limits
from minibinder.proxy.front import ClientConnection, _framing_problem
from minibinder.proxy.listeners import Listener
from minibinder.proxy.wire import RequestHead

LIMITS = Limits(
    header_timeout=10,
    idle_timeout=75,
    body_timeout=300,
    websocket_idle_timeout=3600,
    connections_per_client=0,
)


class FakeTransport(asyncio.Transport):
    def __init__(self):
        super().__init__()
        self.written, self.closed, self.paused = b"", False, False

    def get_extra_info(self, name, default=None):
        return {"peername": ("10.0.0.5", 40000), "sockname": ("127.0.0.1", 8585)}.get(name)

    def write(self, data):
        self.written += data

    def close(self):
        self.closed = True

    def abort(self):
        self.closed = True

    def pause_reading(self):
        self.paused = True

    def resume_reading(self):
        self.paused = False


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.run_until_complete(asyncio.sleep(0))  # the connections' serve tasks end
    loop.close()


def connection(loop, serve=None) -> ClientConnection:
    async def idle(client):
        return None

    client = ClientConnection(
        loop,
        Listener(None, admin=False),
        LIMITS,  # type: ignore[arg-type]
        lambda c: True,
        lambda c: None,
        serve or idle,
    )
    client.connection_made(FakeTransport())
    return client


def events_of(loop, data: bytes | list[bytes]) -> tuple[list, ClientConnection]:
    client = connection(loop)
    for piece in [data] if isinstance(data, bytes) else data:
        client.data_received(piece)
    found = list(client.events)
    client.disarm()
    return found, client


def test_a_request_is_a_head_then_its_end(loop):
    found, _ = events_of(loop, b"GET /x?y=1 HTTP/1.1\r\nHost: h\r\n\r\n")
    assert isinstance(found[0], RequestHead) and found[0].target == b"/x?y=1"
    assert found[0].method == "GET" and found[0].keep_alive and not found[0].has_body
    assert found[1:] == [End()]


def test_pipelined_requests_keep_their_order_across_pieces(loop):
    wire = (
        b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
        b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
    )
    found, _ = events_of(loop, [wire[:7], wire[7:40], wire[40:]])
    heads = [event.target for event in found if isinstance(event, RequestHead)]
    assert heads == [b"/a", b"/b"]
    assert b"".join(event.data for event in found if isinstance(event, Body)) == b"abc"
    assert found[-1] == End()


def test_a_chunked_body_arrives_as_pieces(loop):
    found, client = events_of(
        loop,
        b"POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
        b"\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )
    assert found[0].chunked and found[0].has_body
    assert b"".join(event.data for event in found if isinstance(event, Body)) == b"hello world"
    assert found[-1] == End() and client.ends == 1


@pytest.mark.parametrize(
    "wire, status",
    [
        (b"GET /x HTTP/1.1\nHost: h\n\n", 400),  # bare LF
        (b"GET /x HTTP/1.1\rHost: h\r\n\r\n", 400),  # bare CR
        (b"GET /x HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400),  # obs-fold
        (b"POST /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"POST /x HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n", 400),
        (
            b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;\x01\r\nhello\r\n0\r\n\r\n",
            400,
        ),
        (b"GET /x HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % n for n in range(101)) + b"\r\n", 431),
        (b"GET /x HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n", 431),
    ],
)
def test_what_llhttp_cannot_read_strictly_is_refused(loop, wire, status):
    found, client = events_of(loop, wire)
    failures = [event for event in found if isinstance(event, Failed)]
    assert failures and failures[0].status == status
    client.data_received(b"GET /after HTTP/1.1\r\nHost: h\r\n\r\n")  # nothing more is parsed
    assert not any(isinstance(e, RequestHead) and e.target == b"/after" for e in client.events)


def test_bytes_after_an_upgrade_are_kept_raw_not_parsed(loop):
    wire = (
        b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        b"GET /sneaky HTTP/1.1\r\n\r\n"
    )
    found, client = events_of(loop, wire)
    assert found[0].upgrade and found[0].websocket
    assert not any(isinstance(e, RequestHead) and e.target == b"/sneaky" for e in found)
    assert client.rest == b"GET /sneaky HTTP/1.1\r\n\r\n"


@pytest.mark.parametrize(
    "headers, upgrade, problem",
    [
        ([], False, ""),
        ([(b"Transfer-Encoding", b"chunked")], False, ""),
        ([(b"Transfer-Encoding", b"Chunked")], False, ""),
        ([(b"Transfer-Encoding", b"gzip")], False, "exactly 'chunked'"),
        ([(b"Transfer-Encoding", b"gzip, chunked")], False, "exactly 'chunked'"),
        ([(b"Transfer-Encoding", b"xchunked")], False, "exactly 'chunked'"),
        ([(b"Content-Length", b"5")], True, "cannot carry a body"),
        ([(b"Transfer-Encoding", b"chunked")], True, "cannot carry a body"),
        ([(b"Content-Length", b"0")], True, ""),
    ],
)
def test_framing_the_front_will_not_serve(headers, upgrade, problem):
    head = RequestHead.of("POST", b"/x", headers, "1.1", True, upgrade)
    assert (problem in _framing_problem(head)) and (bool(problem) == bool(_framing_problem(head)))


def test_only_origin_form_targets_are_served():
    head = RequestHead.of("GET", b"http://elsewhere/x", [], "1.1", True, False)
    assert "origin-form" in _framing_problem(head)


def test_read_ahead_returns_once_the_body_is_all_here(loop):
    client = connection(loop)
    client.data_received(b"POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\nabc")

    async def scenario():
        waiting = loop.create_task(client.read_ahead(1 << 20))
        await asyncio.sleep(0)
        assert not waiting.done()
        client.data_received(b"def")
        await asyncio.wait_for(waiting, 1)

    loop.run_until_complete(scenario())
    assert client.ends == 1
    client.disarm()


def test_reading_pauses_while_too_much_waits(loop):
    client = connection(loop)
    client.data_received(b"POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 3000000\r\n\r\n")
    client.data_received(b"x" * (1 << 20) + b"y")
    assert client.transport.paused  # type: ignore[union-attr]
    client.disarm()
