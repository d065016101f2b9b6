"""Kept work, the pure decisions: whose work a session's is, which changed files of its home
are kept (within the limit, the largest left out), and where a restored file goes when the
repository changed it too (`name.mine.ext`). No Docker, no files: `kept_work` acts on these."""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

HOME = "/home/jovyan"
# Written by Jupyter and Python for themselves, not work: never kept.
NOT_WORK = (
    ".cache/",
    ".npm/",
    ".local/share/jupyter/",  # runtime files, the notebook-signing secret and its database
    ".ipython/profile_default/history.sqlite",
    ".jupyter/lab/workspaces/",
)
NOT_WORK_PARTS = {".ipynb_checkpoints", "__pycache__"}


def owner_of(keep_work: str, user: str, browser: str) -> str:
    """Who kept work belongs to, or "" when it is not kept: a browser's anonymous id
    ("browser"), the name the sign-in proxy gave ("user")."""
    if keep_work == "browser" and browser:
        return f"browser:{browser}"
    if keep_work == "user" and user:
        return f"user:{user}"
    return ""


def work_key(owner: str, repo_url: str) -> str:
    """The name of one person's kept work of one repository (a folder name: no names in it)."""
    return hashlib.sha256(f"{owner}\0{repo_url}".encode()).hexdigest()[:32]


CHANGED, ADDED = 0, 1  # `docker diff`'s kinds (2, deleted, is not kept)


def changed_paths(changes: Iterable[Mapping]) -> dict[str, int]:
    """Paths under the home, relative to it, that `docker diff` says were added or changed,
    with their kind, less what is not work."""
    found = {}
    for change in changes:
        path = str(change.get("Path", ""))
        kind = change.get("Kind")
        if kind not in (CHANGED, ADDED) or not path.startswith(HOME + "/"):
            continue
        relative = path[len(HOME) + 1 :]
        if is_work(relative):
            found[relative] = int(kind)
    return found


def ancestors(paths: Iterable[str]) -> set[str]:
    """Every folder above the given relative paths (`a/b/c` → `a`, `a/b`)."""
    found: set[str] = set()
    for path in paths:
        parts = path.split("/")[:-1]
        found.update("/".join(parts[: n + 1]) for n in range(len(parts)))
    return found


def is_work(relative: str) -> bool:
    if relative.startswith(NOT_WORK) or relative in (".", ""):
        return False
    return not NOT_WORK_PARTS.intersection(relative.split("/"))


@dataclass(frozen=True)
class Selection:
    kept: list[str]  # relative paths, smallest first
    skipped: list[tuple[str, int]]  # (path, size) left out, largest first
    kept_bytes: int


def choose_kept(sizes: Mapping[str, int], limit: int) -> Selection:
    """Keep the smallest files first while they fit in `limit`: one huge output file costs
    the work of one file, not of all the notebooks."""
    kept, skipped, total = [], [], 0
    for path, size in sorted(sizes.items(), key=lambda item: (item[1], item[0])):
        if total + size <= limit:
            kept.append(path)
            total += size
        else:
            skipped.append((path, size))
    skipped.sort(key=lambda item: (-item[1], item[0]))
    return Selection(kept, skipped, total)


def mine_name(relative: str) -> str:
    """Where the user's copy goes beside the repository's: `a/notes.ipynb` → `a/notes.mine.ipynb`
    (`Makefile` → `Makefile.mine`, `.env` → `.env.mine`)."""
    folder, name = posixpath.split(relative)
    stem, dot, extension = name.rpartition(".")
    mine = f"{stem}.mine.{extension}" if dot and stem else f"{name}.mine"
    return posixpath.join(folder, mine) if folder else mine


def conflicts(
    kept: Mapping[str, str | None], users: Mapping[str, str], now_in_image: Mapping[str, str]
) -> set[str]:
    """Kept files the repository changed too: `kept` maps each to its hash in the image the
    work was made on (None: the user added it), `users` to the user's own version's hash,
    `now_in_image` to the hash of the file in the image it is restored over (absent: not
    there). A file the repository did not change, or changed to just what the user has, is no
    conflict."""
    found = set()
    for path, base in kept.items():
        current = now_in_image.get(path)
        if current is None or current == base or current == users.get(path):
            continue
        found.add(path)
    return found


def describe_size(size: int) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"
