"""The warm pool's sizes and shortfalls (pure): which size is in force for each pool, the
settings file's or one the operator set while minibinder ran, and why; and why a pool holds
fewer warm sessions than its size.

A size set on the operator's page (or by `stop --all`) wins until the settings file's value for
that pool changes: the file edited on workshop morning is what the operator means now, and a
value set on the page is never silently permanent. Both the page and `doctor` say which is in
force and why.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..config import Config
from ..store import PoolOverride
from .admission import capacity_text, sessions_text, total_limit

FILE = "file"
SET = "set"


@dataclass(frozen=True)
class PoolSize:
    spec: str
    size: int
    source: str  # FILE (warm_pool in the settings) | SET (the operator's page, `stop --all`)
    why: str  # one line for the operator's page, `doctor` and `settings --effective`


def _file_says(size: int | None) -> str:
    return "names no such pool" if size is None else f"says {size}"


def _still_holds(override: PoolOverride, file: Mapping[str, int]) -> bool:
    """An override holds while the file says what it said when the override was made. One
    made before minibinder kept that (set_at 0) yields to any value the file names."""
    if not override.set_at:
        return override.spec not in file
    return file.get(override.spec) == override.file_size


def sizes_in_force(
    file: Mapping[str, int], overrides: Iterable[PoolOverride]
) -> dict[str, PoolSize]:
    """Every pool's size, from `warm_pool` in the settings (`file`) and the sizes set since."""
    sizes = {
        spec: PoolSize(spec, size, FILE, "warm_pool in the settings file")
        for spec, size in file.items()
    }
    for override in overrides:
        by = override.set_by or "the operator's page"
        if _still_holds(override, file):
            when = (
                time.strftime(" at %Y-%m-%d %H:%M", time.localtime(override.set_at))
                if override.set_at
                else ""
            )
            sizes[override.spec] = PoolSize(
                override.spec,
                override.size,
                SET,
                f"set by {by}{when}; the settings file {_file_says(file.get(override.spec))}, "
                "and a change of the file's value takes over again",
            )
        elif override.spec in file:
            sizes[override.spec] = PoolSize(
                override.spec,
                file[override.spec],
                FILE,
                f"warm_pool in the settings file, changed since {by} set {override.size}",
            )
    return sizes


def replaced(file: Mapping[str, int], overrides: Iterable[PoolOverride]) -> list[PoolOverride]:
    """Overrides a change of the settings file has taken over from (to be forgotten)."""
    return [o for o in overrides if not _still_holds(o, file)]


def shortfall(config: Config, host_memory: int, sizes: Mapping[str, int]) -> str:
    """Why the pools cannot all be full on this host however long one waits ("" when they
    fit): warm sessions are admitted like any other, against memory."""
    wanted, seats = sum(sizes.values()), total_limit(config, host_memory)
    if wanted <= seats:
        return ""
    return (
        f"the warm pools want {sessions_text(wanted)} but {capacity_text(config, host_memory)}, "
        "sessions in use included"
    )
