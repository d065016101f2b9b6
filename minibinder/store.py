"""SQLite (WAL) state shared by every worker process: sessions and the launch log."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass, fields
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    token TEXT NOT NULL,
    container_id TEXT NOT NULL DEFAULT '',
    target TEXT NOT NULL DEFAULT '',
    image TEXT NOT NULL,
    provider TEXT NOT NULL DEFAULT '',
    spec TEXT NOT NULL DEFAULT '',
    repo_url TEXT NOT NULL DEFAULT '',
    resolved_ref TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL,
    created REAL NOT NULL,
    last_activity REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_state ON sessions (state);
CREATE TABLE IF NOT EXISTS launches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    provider TEXT NOT NULL,
    spec TEXT NOT NULL,
    resolved_ref TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    build_seconds REAL,
    launch_seconds REAL,
    client_ip TEXT
);
"""


@dataclass(frozen=True)
class SessionRecord:
    id: str
    token: str
    container_id: str
    target: str
    image: str
    provider: str
    spec: str
    repo_url: str
    resolved_ref: str
    state: str  # launching | running | stopped
    created: float
    last_activity: float

    @property
    def prefix(self) -> str:
        return f"/user/{self.id}/"


_SESSION_COLUMNS = [f.name for f in fields(SessionRecord)]


class Store:
    """One connection per thread; every write is a short transaction."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA busy_timeout=30000")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    # -- sessions --------------------------------------------------------------------------

    def add_session(self, record: SessionRecord) -> None:
        placeholders = ", ".join("?" for _ in _SESSION_COLUMNS)
        self._connect().execute(
            f"INSERT INTO sessions ({', '.join(_SESSION_COLUMNS)}) VALUES ({placeholders})",
            [getattr(record, name) for name in _SESSION_COLUMNS])

    def update_session(self, session_id: str, **values: object) -> None:
        assignments = ", ".join(f"{name} = ?" for name in values)
        self._connect().execute(f"UPDATE sessions SET {assignments} WHERE id = ?",
                                [*values.values(), session_id])

    def get_session(self, session_id: str) -> SessionRecord | None:
        row = self._connect().execute(
            f"SELECT {', '.join(_SESSION_COLUMNS)} FROM sessions WHERE id = ?",
            (session_id,)).fetchone()
        return SessionRecord(*row) if row else None

    def sessions(self, state: str | None = None) -> list[SessionRecord]:
        query = f"SELECT {', '.join(_SESSION_COLUMNS)} FROM sessions"
        rows = (self._connect().execute(query + " WHERE state = ? ORDER BY created", (state,))
                if state else self._connect().execute(query + " ORDER BY created"))
        return [SessionRecord(*row) for row in rows]

    def delete_session(self, session_id: str) -> None:
        self._connect().execute("DELETE FROM sessions WHERE id = ?", (session_id,))

    def touch_sessions(self, activity: dict[str, float]) -> None:
        """Record the latest activity of several sessions in one transaction."""
        db = self._connect()
        db.execute("BEGIN")
        db.executemany("UPDATE sessions SET last_activity = max(last_activity, ?) WHERE id = ?",
                       [(when, session_id) for session_id, when in activity.items()])
        db.execute("COMMIT")

    # -- launch log ------------------------------------------------------------------------

    def record_launch(self, provider: str, spec: str, resolved_ref: str, status: str,
                      build_seconds: float | None, launch_seconds: float | None,
                      client_ip: str | None, when: float | None = None) -> None:
        self._connect().execute(
            "INSERT INTO launches (time, provider, spec, resolved_ref, status, build_seconds, "
            "launch_seconds, client_ip) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (when or time.time(), provider, spec, resolved_ref, status, build_seconds,
             launch_seconds, client_ip))

    def launches(self, limit: int = 100) -> list[dict]:
        db = self._connect()
        db.row_factory = sqlite3.Row
        try:
            rows = db.execute("SELECT * FROM launches ORDER BY id DESC LIMIT ?", (limit,))
            return [dict(row) for row in rows]
        finally:
            db.row_factory = None
