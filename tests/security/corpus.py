"""Hostile inputs, generated from families of known tricks: every one must be refused.

Each family multiplies a few payloads by the places they can be put, so the corpus grows with
every trick added here. `tests/security/test_corpus.py` feeds them to the parsers and to a
running service.
"""

from __future__ import annotations

import re
from urllib.parse import quote

# Text that must never become an option, a path outside, a second command or a second header.
PAYLOADS = [
    "--upload-pack=touch /tmp/pwned", "-oProxyCommand=id", "--config=core.sshCommand=id",
    "../../../../etc/passwd", "..%2f..%2fetc%2fpasswd", "%2e%2e/%2e%2e/etc", "..\\..\\windows",
    "$(id)", "`id`", "a;id", "a|id", "a&&id", "a\nb", "a\rb", "a\x00b", "a\x7fb", "a b",
    "~root", "@{-1}", "HEAD^{/x}", "a..b", "a.lock", "refs/heads/../x", "/abs", "x/",
    "<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>", "javascript:alert(1)",
    "%00", "%0d%0aSet-Cookie:x=1", "\u202egnp.exe", "a" * 300,
]  # fmt: skip

HOSTILE_URLS = [
    "file:///etc/passwd", "file://localhost/etc/passwd", "/etc/passwd", "./repo", "../repo",
    "ext::sh -c id", "fd::0", "ssh://git@github.com/o/r", "git@github.com:o/r.git",
    "https://user:pass@github.com/o/r", "https://token@github.com/o/r", "-uhttps://x/y",
    "https://github.com/-o/r", "https://github.com/o/--upload-pack=id", "https:///o/r",
    "https://github.com", "https://github.com/", "https://gith ub.com/o/r",
    "https://github.com/o/r;id", "https://github.com/o/r`id`", "https://github.com:0/o/r",
    "https://github.com:99999/o/r", "ftp://example.org/r.git", "gopher://example.org/r",
    "https://example.org/r\nHost: x", "http://169.254.169.254/latest", "HTTPS://[::1]:x/r",
]  # fmt: skip


def bad_name(text: str) -> bool:
    """Not an owner, repository or user name a forge could have."""
    return not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", text) or text in (".", "..")


def bad_ref(text: str) -> bool:
    """Not a ref git would accept (git check-ref-format, written down independently)."""
    return (
        not text
        or len(text) > 255
        or any(ord(c) <= 32 or ord(c) == 127 for c in text)
        or any(c in text for c in "~^:?*[\\")
        or ".." in text
        or "@{" in text
        or "//" in text
        or "/." in text
        or text.startswith(("-", "/", "."))
        or text.endswith(("/", ".", ".lock"))
    )


def hostile_specs() -> list[str]:
    """`<provider>/<spec>` strings that must be refused before any git process starts: each
    payload goes only where it is invalid."""
    specs: list[str] = []
    for payload in PAYLOADS:
        quoted = quote(payload, safe="")
        if bad_name(payload):
            specs += [f"gh/{quoted}/repo/HEAD", f"gh/owner/{quoted}/HEAD", f"gist/{quoted}/abc123"]
        if bad_name(payload.strip("/")):  # a namespace's outer slashes are dropped
            specs.append(f"gl/group%2F{quoted}/HEAD")
        if bad_ref(payload):
            specs += [
                f"gh/owner/repo/{quoted}",
                f"gl/group%2Fproject/{quoted}",
                f"gist/user/abc123/{quoted}",
                f"git/https%3A%2F%2Fexample.org%2Fr/{quoted}",
            ]
        specs.append(f"git/{quoted}/HEAD")  # never a clone URL
    for url in HOSTILE_URLS:
        specs += [f"git/{quote(url, safe='')}/HEAD", f"git/{quote(quote(url, safe=''))}/HEAD"]
    specs += [
        "",
        "gh",
        "gh/",
        "svn/o/r/HEAD",
        "GH/o/r/HEAD",
        "gh/o",
        "gh//r/HEAD",
        "gl/nons/HEAD",
        "gist/u",
        "git//HEAD",
        "gist/u/not-hex!",
    ]
    return specs


def hostile_landings() -> list[dict[str, str]]:
    """urlpath/labpath/filepath values that must never lead outside the session or the site."""
    landings = []
    # Each place starts at a different depth inside the session: "lab/…" one folder down,
    # filepath under "tree/", labpath under "doc/tree/". Enough steps up must leave it.
    places = [
        ("urlpath", "", 1),
        ("urlpath", "/", 1),
        ("urlpath", "lab/", 2),
        ("filepath", "", 2),
        ("labpath", "", 3),
    ]
    for escape in ("..", "%2e%2e", "%2E%2e", ".%2e", "%252e%252e", "..%2f..", "..\\.."):
        for key, lead, needed in places:
            for extra in (0, 1, 2):
                path = lead + "/".join([escape] * (needed + extra)) + "/0123456789abcdef/steal"
                landings.append({key: path})
    for other in (
        "//evil.example/x",
        "\\\\evil.example",
        "/\\evil.example",
        "https://evil.example",
        "javascript:alert(1)",
        "data:text/html,x",
        "/lab\nLocation: x",
        "/lab\r\nX: y",
    ):
        landings.append({"urlpath": other})
    return landings


def hostile_paths() -> list[str]:
    """Raw request paths sent to a running service: none may answer 5xx or reach a session."""
    session = "0123456789abcdef"
    paths = []
    for payload in PAYLOADS:
        quoted = quote(payload, safe="")
        paths += [
            f"/v2/gh/{quoted}/r/HEAD",
            f"/build/gh/o/{quoted}/HEAD",
            f"/user/{session}/{quoted}",
            f"/user/{quoted}/lab",
            f"/?repo={quoted}",
            f"/v2/gh/o/r/HEAD?urlpath={quoted}",
            f"/badge_logo.svg?x={quoted}",
        ]
    for traversal in ("%2e%2e", "..", ".%2E", "%2F..%2F", "%5c..%5c", "%252e%252e"):
        paths += [
            f"/user/{session}/{traversal}/{session[::-1]}/api",
            f"/user/{traversal}/{session}/api",
            f"/static/{traversal}/{traversal}/etc/passwd",
            f"/admin/builds/{traversal}%2f{traversal}%2fetc%2fpasswd",
        ]
    return paths


def hostile_headers() -> list[dict[str, str]]:
    """Request headers a client controls: none may turn into a 5xx or be believed."""
    headers = []
    for host in (
        "attacker.example",
        "attacker.example:8585",
        "",
        "127.0.0.1:1",
        "a" * 300,
        "[::1",
        "127.0.0.1:8585@evil",
        "xn--80ak6aa92e.com",
    ):
        headers.append({"Host": host})
    for name in (
        "X-Forwarded-For",
        "X-Forwarded-Host",
        "X-Forwarded-Proto",
        "Forwarded",
        "X-Real-IP",
        "Cookie",
        "Authorization",
        "Origin",
        "Referer",
        "Upgrade",
    ):
        for payload in PAYLOADS[:12]:
            headers.append(
                {name: payload.replace("\n", " ").replace("\r", " ").replace("\x00", "")}
            )
    return headers


def framing_shapes() -> dict[str, str]:
    """Requests whose body framing a second HTTP parser could read differently (#18): each is
    answered 400 and nothing of it (a marker in its path) reaches minibinder's pages or a
    session. `PATH` is a page or a session path, `HOST` the service's address."""
    head = "POST PATH HTTP/1.1\r\nHost: HOST\r\n"
    upgrade = "Connection: Upgrade\r\nUpgrade: foo\r\n"
    then = "GET /versions HTTP/1.1\r\nHost: HOST\r\n\r\n"  # what a smuggled body would hide
    chunks = "5\r\nhello\r\n0\r\n\r\n"
    return {
        "upgrade with a length": f"{head}{upgrade}Content-Length: {len(then)}\r\n\r\n{then}",
        "upgrade with a length, body withheld": f"{head}{upgrade}Content-Length: 5\r\n\r\n",
        "upgrade with chunks": f"{head}{upgrade}Transfer-Encoding: chunked\r\n\r\n{chunks}",
        "websocket upgrade with a length": f"{head}Connection: Upgrade\r\nUpgrade: websocket\r\n"
        f"Content-Length: {len(then)}\r\n\r\n{then}",
        "gzip coding": f"{head}Transfer-Encoding: gzip\r\n\r\nhello",
        "xchunked coding": f"{head}Transfer-Encoding: xchunked\r\n\r\n{chunks}",
        "gzip then chunked": f"{head}Transfer-Encoding: gzip, chunked\r\n\r\n{chunks}",
        "chunked with spaces": f"{head}Transfer-Encoding:  chunked , \r\n\r\n{chunks}",
        "chunk size with a space": f"{head}Transfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n"
        "\r\n",
        "chunk size 0x": f"{head}Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
        "chunk size bare LF": f"{head}Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
        "chunk longer than said": f"{head}Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n"
        "\r\n",
        "chunk extension with a control": f"{head}Transfer-Encoding: chunked\r\n\r\n5;\x01\r\n"
        "hello\r\n0\r\n\r\n",
        "chunk extension with a quoted CRLF": f'{head}Transfer-Encoding: chunked\r\n\r\n5;a="b'
        '\r\nc"\r\nhello\r\n0\r\n\r\n',
        "bare LF in the head": "GET PATH HTTP/1.1\nHost: HOST\n\n",
        "bare CR in the head": "GET PATH HTTP/1.1\rHost: HOST\r\n\r\n",
    }


def unnormalised_paths(path: str) -> list[str]:
    """Spellings of `path` (e.g. /admin/) that routing reads as the same path."""
    inner = path.lstrip("/")
    return [
        f"//{inner}",
        f"///{inner}",
        f"/./{inner}",
        f"/x/../{inner}",
        f"/%2F{inner}",
        f"/%2e/{inner}",
        f"/static/../{inner}",
        f"/%2e%2e/{inner}",
        f"//{inner.rstrip('/')}",
    ]
