"""What `minibinder work` shows of kept work (keep_work) and how it deletes it."""

from __future__ import annotations

import time

from ..config import Config
from ..sessions.keeping import describe_size
from ..sessions.kept_work import FOLDER, KeptWork, Shelf


def shelf_of(config: Config) -> Shelf:
    """The installation's kept work, as `serve` keeps it (no Docker, no database needed)."""
    return Shelf(config.data_path / FOLDER)


def work_rows(works: list[KeptWork], config: Config, now: float | None = None) -> list[list[str]]:
    """One row per person and repository: the key (to delete it), whose, which repository,
    when it was saved and when it goes, how much."""
    now = now or time.time()
    rows = [["KEY", "OWNER", "REPOSITORY", "SAVED", "EXPIRES IN", "FILES", "SIZE", "LEFT OUT"]]
    for work in works:
        left = max(0.0, work.saved_at + config.keep_work_hours * 3600 - now)
        rows.append(
            [
                work.key,
                work.owner,
                work.repo_url,
                time.strftime("%Y-%m-%d %H:%M", time.localtime(work.saved_at)),
                f"{left / 3600:.1f} h",
                str(len(work.files)),
                describe_size(work.size),
                str(len(work.skipped)),
            ]
        )
    return rows


def delete_work(shelf: Shelf, keys: tuple[str, ...], owner: str, every: bool) -> list[str]:
    """Delete kept work by key, by owner (`user:NAME`, `browser:ID`) or all; the keys gone."""
    chosen = [
        work.key
        for work in shelf.all()
        if every or work.key in keys or (owner and work.owner == owner)
    ]
    return [key for key in chosen if shelf.delete(key)]
