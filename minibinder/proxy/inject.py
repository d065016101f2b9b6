"""Adding a script to a session's own HTML pages (pure): which responses qualify, and where the
tag goes. Only small, uncompressed pages are touched; anything else streams through as is."""

from __future__ import annotations

import http.client
import re

MAX_INJECT_BYTES = 4 * 2**20
_PAGE = re.compile(r"^/user/[0-9a-f]{16}/(lab|tree|doc|notebooks|edit|voila)(/|\?|$)")


def is_page(raw_path: str) -> bool:
    """A path where Jupyter serves one of its user interface pages."""
    return bool(_PAGE.match(raw_path))


def injectable(upstream: http.client.HTTPResponse) -> bool:
    """A small, uncompressed HTML page: the session's own page, where the notice script goes."""
    length = upstream.getheader("Content-Length")
    return (
        (upstream.getheader("Content-Type") or "").startswith("text/html")
        and not upstream.getheader("Content-Encoding")
        and (length is None or int(length) <= MAX_INJECT_BYTES)
    )


def inject_script(html: bytes, tag: bytes) -> bytes:
    """`html` with `tag` just before `</head>` (or at the end when there is none)."""
    marker = html.find(b"</head>")
    return html[:marker] + tag + html[marker:] if marker >= 0 else html + tag
