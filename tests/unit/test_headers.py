"""Which headers cross the proxy, both ways."""

import pytest

from minibinder.proxy.headers import (
    forward_headers,
    raw_request_path,
    response_headers,
    session_cookie,
    strip_own_cookies,
)


def forwarded(headers, upgrade=False):
    pairs = [(name.encode(), value.encode()) for name, value in headers]
    sent = forward_headers(pairs, "10.1.2.3", "https", upgrade=upgrade)
    return [(name.decode(), value.decode()) for name, value in sent]


def test_hop_by_hop_and_connection_named_headers_are_dropped():
    sent = dict(
        forwarded(
            [
                ("Host", "binder.example"),
                ("Connection", "keep-alive, X-Secret"),
                ("X-Secret", "hop"),
                ("Keep-Alive", "timeout=5"),
                ("TE", "trailers"),
                ("Upgrade", "websocket"),
                ("Proxy-Authorization", "Basic x"),
                ("Expect", "100-continue"),
                ("X-Kept", "yes"),
                ("Content-Type", "text/plain"),
                ("Content-Length", "3"),
            ]
        )
    )
    assert sent["Host"] == "binder.example"
    assert sent["X-Kept"] == "yes"
    assert sent["Content-Type"] == "text/plain" and sent["Content-Length"] == "3"
    for name in (
        "Connection",
        "X-Secret",
        "Keep-Alive",
        "TE",
        "Upgrade",
        "Proxy-Authorization",
        "Expect",
    ):
        assert name not in sent


def test_the_websocket_handshake_keeps_connection_and_upgrade():
    sent = dict(
        forwarded(
            [("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Key", "k")],
            upgrade=True,
        )
    )
    assert sent["Connection"] == "Upgrade" and sent["Upgrade"] == "websocket"
    assert sent["Sec-WebSocket-Key"] == "k"


def test_forwarded_headers_are_set_by_the_proxy_alone():
    sent = forwarded(
        [
            ("Host", "h:1"),
            ("X-Forwarded-For", "6.6.6.6"),
            ("X-Real-IP", "6.6.6.6"),
            ("x-forwarded-proto", "gopher"),
        ]
    )
    names = [name for name, _ in sent]
    assert names.count("X-Forwarded-For") == 1 and "X-Real-IP" not in names
    assert "x-forwarded-proto" not in names
    assert dict(sent)["X-Forwarded-For"] == "10.1.2.3"
    assert dict(sent)["X-Forwarded-Proto"] == "https"
    assert dict(sent)["X-Forwarded-Host"] == "h:1"


@pytest.mark.parametrize(
    "cookie, kept",
    [
        ("minibinder-admin=s; _xsrf=a", "_xsrf=a"),
        ("MiniBinder_x=1", ""),
        ("a=1;  b=2 ", "a=1; b=2"),
    ],
)
def test_own_cookies_never_reach_a_session(cookie, kept):
    assert strip_own_cookies(cookie) == kept
    sent = dict(forwarded([("Cookie", cookie)]))
    assert sent.get("Cookie", "") == kept


def test_response_hop_by_hop_headers_are_dropped():
    upstream = [
        (b"Connection", b"X-Backend"),
        (b"X-Backend", b"s"),
        (b"Keep-Alive", b"t"),
        (b"Transfer-Encoding", b"chunked"),
        (b"Content-Type", b"text/html"),
        (b"Set-Cookie", b"a=1"),
        (b"Set-Cookie", b"b=2"),
    ]
    assert response_headers(upstream) == [
        (b"Content-Type", b"text/html"),
        (b"Set-Cookie", b"a=1"),
        (b"Set-Cookie", b"b=2"),
    ]


def test_raw_request_path_prefers_the_raw_uri():
    assert (
        raw_request_path({"RAW_URI": "/user/x/a%2Fb?q=1", "PATH_INFO": "/user/x/a/b"})
        == "/user/x/a%2Fb?q=1"
    )
    assert (
        raw_request_path({"PATH_INFO": "/user/x/a b", "QUERY_STRING": "q=1"}) == "/user/x/a%20b?q=1"
    )


PREFIX = "/user/0123456789abcdef/"


@pytest.mark.parametrize(
    "cookie, kept",
    [
        ("_xsrf=abc; Path=/user/0123456789abcdef/", True),
        ("username-h=x; path=/user/0123456789abcdef/; HttpOnly", True),
        ("a=1; Path=/user/0123456789abcdef", True),
        ("a=1; Path=/user/0123456789abcdef/lab/", True),
        ("a=1", True),
        ("a=1; Path=/", False), ("a=1; Path=/admin", False), ("a=1; PATH=/admin", False),
        ("a=1; Path=/user/fedcba9876543210/", False), ("a=1; Path=/user/0123456789abcdefX", False),
        ("a=1; Path=/user/0123456789abcdef/; Domain=binder.example.org", False),
        ("a=1; domain=.example.org", False),
    ],
)  # fmt: skip
def test_sessions_set_cookies_for_their_own_path_only(cookie, kept):
    assert session_cookie(cookie, PREFIX) is kept
