"""Launch links, badge snippets and where to land inside a session (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from urllib.parse import quote, unquote, urlencode

from ..errors import SpecError

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def session_path(urlpath: str = "", labpath: str = "", filepath: str = "") -> str:
    """Where to go inside the session, relative to its base URL; `labpath` wins over `filepath`.

    Only same-origin relative paths are accepted: `//host`, `\\\\host` and `scheme:` are refused
    so a link can never send the session's token to another site, and dot segments (`..`,
    `%2e%2e`, in any encoding a browser would undo) may not climb out of the session, so it can
    never reach another session's path with this session's token.
    """
    if labpath:
        landing = "doc/tree/" + quote(labpath.lstrip("/"))
    elif filepath:
        landing = "tree/" + quote(filepath.lstrip("/"))
    elif not urlpath:
        return "lab"
    else:
        if (
            urlpath.startswith(("//", "\\", "/\\"))
            or "\\" in urlpath
            or _SCHEME.match(urlpath)
            or any(ord(c) < 32 or c == "\x7f" for c in urlpath)
        ):
            raise SpecError(
                f"urlpath {urlpath!r} must be a path inside the session, like /lab or "
                "/tree/notebook.ipynb"
            )
        landing = urlpath.lstrip("/")
    if _climbs_out(landing):
        raise SpecError(
            f"{landing!r} leaves the session: '..' may not lead above the session's own folder"
        )
    return landing


def _climbs_out(landing: str) -> bool:
    """Whether a relative path, read the way a browser reads it, leaves its base folder."""
    path = landing.split("?", 1)[0].split("#", 1)[0]
    for _ in range(3):  # %252e%252e → %2e%2e → ..: undo what a link could have stacked
        path = unquote(path)
    depth = 0
    for segment in path.replace("\\", "/").split("/"):
        if segment == "..":
            depth -= 1
            if depth < 0:
                return True
        elif segment not in ("", "."):
            depth += 1
    return False


def with_token(url: str, token: str) -> str:
    return url + ("&" if "?" in url else "?") + urlencode({"token": token})


@dataclass(frozen=True)
class Badges:
    url: str
    markdown: str
    rst: str
    html: str


def launch_link(host_url: str, spec: str, path: str = "", ui: str = "lab") -> Badges:
    """The launch URL for a spec and copy-ready badge snippets, as mybinder.org offers them."""
    base = host_url.rstrip("/")
    url = f"{base}/v2/{spec}"
    if path:
        url += "?" + urlencode({"labpath" if ui == "lab" else "filepath": path})
    elif ui == "classic":
        url += "?" + urlencode({"urlpath": "/tree"})
    logo = f"{base}/badge_logo.svg"
    return Badges(
        url=url,
        markdown=f"[![Binder]({logo})]({url})",
        rst=f".. image:: {logo}\n :target: {url}",
        html=f'<a href="{escape(url)}"><img src="{escape(logo)}" alt="Launch Binder"></a>',
    )
