"""Which headers cross the proxy, both ways."""

import pytest

from minibinder.proxy.headers import (
    forward_headers,
    raw_request_path,
    response_headers,
    session_cookie,
    strip_own_cookies,
)


def environ(**headers):
    base = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/user/x/lab",
        "REMOTE_ADDR": "10.1.2.3",
        "wsgi.url_scheme": "https",
    }
    base.update(headers)
    return base


def test_hop_by_hop_and_connection_named_headers_are_dropped():
    sent = dict(
        forward_headers(
            environ(
                HTTP_HOST="binder.example",
                HTTP_CONNECTION="keep-alive, X-Secret",
                HTTP_X_SECRET="hop",
                HTTP_KEEP_ALIVE="timeout=5",
                HTTP_TE="trailers",
                HTTP_UPGRADE="websocket",
                HTTP_PROXY_AUTHORIZATION="Basic x",
                HTTP_X_KEPT="yes",
                CONTENT_TYPE="text/plain",
                CONTENT_LENGTH="3",
            )
        )
    )
    assert sent["Host"] == "binder.example"
    assert sent["X-Kept"] == "yes"
    assert sent["Content-Type"] == "text/plain" and sent["Content-Length"] == "3"
    for name in ("Connection", "X-Secret", "Keep-Alive", "Te", "Upgrade", "Proxy-Authorization"):
        assert name not in sent


def test_the_websocket_handshake_keeps_connection_and_upgrade():
    sent = dict(
        forward_headers(
            environ(
                HTTP_CONNECTION="Upgrade", HTTP_UPGRADE="websocket", HTTP_SEC_WEBSOCKET_KEY="k"
            ),
            upgrade=True,
        )
    )
    assert sent["Connection"] == "Upgrade" and sent["Upgrade"] == "websocket"
    assert sent["Sec-Websocket-Key"] == "k"


def test_forwarded_headers_are_set_by_the_proxy_alone():
    sent = forward_headers(
        environ(
            HTTP_HOST="h:1",
            HTTP_X_FORWARDED_FOR="6.6.6.6",
            HTTP_X_REAL_IP="6.6.6.6",
            HTTP_X_FORWARDED_PROTO="gopher",
        )
    )
    names = [name for name, _ in sent]
    assert names.count("X-Forwarded-For") == 1 and "X-Real-Ip" not in names
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
    sent = dict(forward_headers(environ(HTTP_COOKIE=cookie)))
    assert sent.get("Cookie", "") == kept


class Upstream:
    def __init__(self, headers):
        self.headers = headers

    def getheader(self, name, default=None):
        return next((v for k, v in self.headers if k.lower() == name.lower()), default)

    def getheaders(self):
        return self.headers


def test_response_hop_by_hop_headers_are_dropped():
    upstream = Upstream(
        [
            ("Connection", "X-Backend"),
            ("X-Backend", "s"),
            ("Keep-Alive", "t"),
            ("Transfer-Encoding", "chunked"),
            ("Content-Type", "text/html"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
        ]
    )
    assert response_headers(upstream) == [
        ("Content-Type", "text/html"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
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
