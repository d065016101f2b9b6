"""Adding a script to a session's own HTML pages (pure): which responses qualify, and where the
tag goes. Only small, uncompressed pages are touched; anything else streams through as is."""

from __future__ import annotations

import re

from .headers import Headers, header

MAX_INJECT_BYTES = 4 * 2**20
_PAGE = re.compile(r"^/user/[0-9a-f]{16}/(lab|tree|doc|notebooks|edit|voila)(/|\?|$)")


def is_page(raw_path: str) -> bool:
    """A path where Jupyter serves one of its user interface pages."""
    return bool(_PAGE.match(raw_path))


def injectable(headers: Headers) -> bool:
    """A small, uncompressed HTML page: the session's own page, where the notice script goes."""
    length = header(headers, b"content-length")
    return (
        (header(headers, b"content-type") or b"").startswith(b"text/html")
        and not header(headers, b"content-encoding")
        and (length is None or (length.isdigit() and int(length) <= MAX_INJECT_BYTES))
    )


def inject_script(html: bytes, tag: bytes) -> bytes:
    """`html` with `tag` just before `</head>` (or at the end when there is none)."""
    marker = html.find(b"</head>")
    return html[:marker] + tag + html[marker:] if marker >= 0 else html + tag
