"""Submodules, read by minibinder rather than fetched by `git submodule update`: so that each
submodule's URL passes the same scheme and host checks as a launch link's before git connects.
Pure: the parsing and the checks; `fetch` does the fetching."""

from __future__ import annotations

import posixpath
from pathlib import PurePosixPath
from urllib.parse import urlsplit, urlunsplit

from ..errors import FetchError

MAX_DEPTH = 3  # submodules of submodules of submodules, no deeper


def submodule_entries(listing: str) -> list[tuple[str, str, str]]:
    """(name, path, url) of each submodule in the `git config -z --get-regexp` output of a
    .gitmodules file; entries without a path or a URL are left out (git skips them too)."""
    found: dict[str, dict[str, str]] = {}
    for item in listing.split("\0"):
        key, _, value = item.partition("\n")
        name, _, field_name = key.removeprefix("submodule.").rpartition(".")
        if key.startswith("submodule.") and name:
            found.setdefault(name, {})[field_name] = value
    return [
        (name, entry["path"], entry["url"])
        for name, entry in found.items()
        if entry.get("path") and entry.get("url")
    ]


def submodule_url(superproject: str, url: str) -> str:
    """A submodule's URL; `./` and `../` ones are relative to the superproject's, as in git."""
    if not url.startswith(("./", "../")):
        return url
    parts = urlsplit(superproject)
    path = posixpath.normpath(posixpath.join(parts.path.rstrip("/") or "/", url))
    return urlunsplit(parts._replace(path=path, query="", fragment=""))


def check_submodule_path(name: str, path: str) -> None:
    """A submodule lives inside the checkout, never in or beside its .git."""
    parts = PurePosixPath(path).parts
    if not parts or path.startswith("/") or "\\" in path or {"..", ".git"} & set(parts):
        raise FetchError(f"submodule {name!r}: its path {path!r} leaves the checkout")
