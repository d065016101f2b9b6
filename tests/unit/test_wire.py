"""HTTP/1.1 on the wire for the front: heads, the environ the guards read, small responses."""

import pytest

from minibinder.proxy.wire import (
    LISTENER_PORT,
    RequestHead,
    canonical_path,
    environ_for,
    request_bytes,
    simple_response,
    wsgi_response,
)


def head(target=b"/user/0123456789abcdef/lab?x=1", headers=(), method="GET", upgrade=False):
    return RequestHead.of(method, target, list(headers), "1.1", True, upgrade)


def test_the_environ_is_what_gunicorn_would_give():
    environ = environ_for(
        head(
            b"/user/0123456789abcdef/a%20b?token=t",
            [
                (b"Host", b"h:1"),
                (b"Content-Type", b"text/plain"),
                (b"X-A", b"1"),
                (b"x-a", b"2"),
                (b"X_Spoof", b"no"),
            ],
        ),
        "10.0.0.9",
        8585,
        "https",
    )
    assert environ["PATH_INFO"] == "/user/0123456789abcdef/a b"
    assert environ["RAW_URI"] == "/user/0123456789abcdef/a%20b?token=t"
    assert environ["QUERY_STRING"] == "token=t"
    assert environ["HTTP_HOST"] == "h:1" and environ["CONTENT_TYPE"] == "text/plain"
    assert environ["HTTP_X_A"] == "1,2"
    assert "HTTP_X_SPOOF" not in environ  # an underscore would pass for another header
    assert environ["REMOTE_ADDR"] == "10.0.0.9" and environ["wsgi.url_scheme"] == "https"
    assert environ[LISTENER_PORT] == 8585


def test_body_framing_is_read_from_the_head():
    assert not head().has_body
    assert head(headers=[(b"Content-Length", b"5")], method="POST").length == 5
    chunked = head(headers=[(b"Transfer-Encoding", b"chunked")], method="POST")
    assert chunked.chunked and chunked.has_body
    websocket = head(headers=[(b"Upgrade", b"websocket"), (b"Content-Length", b"5")], upgrade=True)
    assert websocket.websocket and not websocket.has_body  # after an upgrade: not HTTP
    assert head(headers=[(b"Expect", b"100-Continue")]).expects_continue


def test_a_forwarded_request_is_framed_by_the_proxy_alone():
    sent = request_bytes("POST", b"/a", [(b"Host", b"h"), (b"content-length", b"9")], True, None)
    assert sent == b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    sent = request_bytes("POST", b"/a", [(b"Content-Length", b"3")], False, 3)
    assert sent == b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\n"


def test_small_responses_carry_their_length():
    answer = simple_response(429, "slow down\n", close=True, retry_after=5)
    assert answer.startswith(b"HTTP/1.1 429 Too Many Requests\r\n")
    assert b"Retry-After: 5\r\n" in answer and b"Connection: close\r\n" in answer
    assert answer.endswith(b"Content-Length: 10\r\nConnection: close\r\n\r\nslow down\n")
    redirect = wsgi_response(
        "302 Found", [("Location", "/x/"), ("Content-Length", "0")], b"", close=False
    )
    assert redirect == (
        b"HTTP/1.1 302 Found\r\nLocation: /x/\r\nX-Frame-Options: DENY\r\n"
        b"Content-Security-Policy: frame-ancestors 'none'\r\nContent-Length: 0"
        b"\r\n\r\n"
    )


@pytest.mark.parametrize(
    "path, canonical",
    [
        ("/", "/"), ("", "/"), ("//admin/", "/admin/"), ("///admin", "/admin"),
        ("/./admin/", "/admin/"), ("/x/../admin/", "/admin/"), ("/../../admin", "/admin"),
        ("/admin/.", "/admin/"), ("/admin/x/..", "/admin/"), ("/a//b/./c/", "/a/b/c/"),
        ("/user/abc/lab/tree/x.ipynb", "/user/abc/lab/tree/x.ipynb"), ("/..", "/"),
    ],
)  # fmt: skip
def test_paths_are_read_in_one_canonical_form(path, canonical):
    assert canonical_path(path) == canonical


def test_the_environ_carries_the_canonical_path_and_keeps_the_raw_one():
    environ = environ_for(head(b"/%2Fadmin/./x/../?a=1"), "10.0.0.1", 8585, "http")
    assert environ["PATH_INFO"] == "/admin/"
    assert environ["RAW_URI"] == "/%2Fadmin/./x/../?a=1"
