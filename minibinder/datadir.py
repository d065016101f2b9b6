"""The data directory is minibinder's own: it holds every session's token (SQLite), the
operator's token and the cookie secret. The folder is 0700 and what minibinder makes in it 0600
(the process runs with umask 077), so no other local user reads them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_UMASK = 0o077


def make_private(path: Path) -> None:
    """Create (or take back) the data directory for this user alone, and make every file
    created from now on 0600. Files an earlier version left readable are closed too."""
    os.umask(PRIVATE_UMASK)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    for entry in path.iterdir():
        mode = entry.lstat().st_mode
        if stat.S_ISREG(mode) and mode & 0o077:
            os.chmod(entry, 0o600)


def exposed(path: Path) -> list[str]:
    """What in the data directory another local user could read (for `minibinder doctor`)."""
    if not path.exists():
        return []
    found = []
    if path.stat().st_mode & 0o077:
        found.append(f"{path} is {oct(path.stat().st_mode & 0o777)}")
    for entry in sorted(path.iterdir()):
        mode = entry.lstat().st_mode
        if (stat.S_ISREG(mode) or stat.S_ISDIR(mode)) and mode & 0o077:
            found.append(f"{entry.name} is {oct(mode & 0o777)}")
    return found
