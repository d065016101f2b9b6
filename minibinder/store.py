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
    last_activity REAL NOT NULL,
    extra_seconds REAL NOT NULL DEFAULT 0,
    oom_count INTEGER NOT NULL DEFAULT 0,
    cpu_seconds REAL NOT NULL DEFAULT 0,
    cpu_checked_at REAL NOT NULL DEFAULT 0,
    cpu_advanced_at REAL NOT NULL DEFAULT 0,
    client TEXT NOT NULL DEFAULT '',
    path_prefix TEXT NOT NULL DEFAULT '',
    address TEXT NOT NULL DEFAULT '',
    keeper TEXT NOT NULL DEFAULT '',
    node TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS sessions_state ON sessions (state);
CREATE TABLE IF NOT EXISTS access_failures (
    client TEXT NOT NULL,
    time REAL NOT NULL,
    address TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS client_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    client TEXT NOT NULL,
    started REAL NOT NULL,
    building INTEGER NOT NULL DEFAULT 0,
    address TEXT NOT NULL DEFAULT '',
    image TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS images (
    name TEXT PRIMARY KEY,
    last_used REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS facts (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pool (
    spec TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    file_size INTEGER,
    set_at REAL NOT NULL DEFAULT 0,
    set_by TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS samples (
    time REAL NOT NULL,
    sessions INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS launches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    provider TEXT NOT NULL,
    spec TEXT NOT NULL,
    resolved_ref TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    build_seconds REAL,
    launch_seconds REAL,
    client_ip TEXT,
    image TEXT NOT NULL DEFAULT '',
    user TEXT NOT NULL DEFAULT '',
    session TEXT NOT NULL DEFAULT '',
    ended TEXT NOT NULL DEFAULT '',
    private INTEGER NOT NULL DEFAULT 0,
    restored INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS launches_time ON launches (time);
"""
# Columns added after the first release: (table, column, declaration).
MIGRATIONS = (
    ("sessions", "extra_seconds", "REAL NOT NULL DEFAULT 0"),
    ("sessions", "oom_count", "INTEGER NOT NULL DEFAULT 0"),
    ("sessions", "cpu_seconds", "REAL NOT NULL DEFAULT 0"),
    ("sessions", "cpu_checked_at", "REAL NOT NULL DEFAULT 0"),
    ("sessions", "cpu_advanced_at", "REAL NOT NULL DEFAULT 0"),
    ("launches", "image", "TEXT NOT NULL DEFAULT ''"),
    ("sessions", "client", "TEXT NOT NULL DEFAULT ''"),
    ("launches", "user", "TEXT NOT NULL DEFAULT ''"),
    ("sessions", "path_prefix", "TEXT NOT NULL DEFAULT ''"),
    ("launches", "session", "TEXT NOT NULL DEFAULT ''"),
    ("sessions", "address", "TEXT NOT NULL DEFAULT ''"),
    ("client_requests", "address", "TEXT NOT NULL DEFAULT ''"),
    ("client_requests", "image", "TEXT NOT NULL DEFAULT ''"),
    ("access_failures", "address", "TEXT NOT NULL DEFAULT ''"),
    ("launches", "ended", "TEXT NOT NULL DEFAULT ''"),
    ("pool", "file_size", "INTEGER"),
    ("pool", "set_at", "REAL NOT NULL DEFAULT 0"),
    ("pool", "set_by", "TEXT NOT NULL DEFAULT ''"),
    ("launches", "private", "INTEGER NOT NULL DEFAULT 0"),
    ("sessions", "keeper", "TEXT NOT NULL DEFAULT ''"),
    ("launches", "restored", "INTEGER NOT NULL DEFAULT 0"),
    ("sessions", "node", "TEXT NOT NULL DEFAULT ''"),
)


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
    state: str  # launching | warm (started, unclaimed) | running
    created: float
    last_activity: float
    extra_seconds: float = 0.0
    oom_count: int = 0
    cpu_seconds: float = 0.0  # the cgroup's CPU time when the culler last looked
    cpu_checked_at: float = 0.0  # and when that was
    cpu_advanced_at: float = 0.0  # when the culler last saw it computing
    client: str = ""  # who launched (or claimed) it, for per-client limits (client_key)
    path_prefix: str = ""  # where minibinder is served ("/binder"), when it started
    address: str = ""  # the address it was launched (or claimed) from
    keeper: str = ""  # whose work it is, kept as it ends (keeping.owner_of); "": not kept
    node: str = ""  # the swarm node it runs on ("": this machine)

    @property
    def prefix(self) -> str:
        """The session's path, as browsers and its Jupyter server (base_url) see it."""
        return f"{self.path_prefix}/user/{self.id}/"


_SESSION_COLUMNS = [f.name for f in fields(SessionRecord)]


@dataclass(frozen=True)
class PoolOverride:
    """A warm pool size the operator set while minibinder ran (the operator's page, `stop
    --all`), with what the settings file said for that pool then: a later change of the file
    wins again (sessions/pool.py decides)."""

    spec: str
    size: int
    file_size: int | None  # the file's size for the pool when this was set; None: it named none
    set_at: float  # 0: set before minibinder kept file_size, which is then unknown
    set_by: str = ""


class Store:
    """One connection per thread; every write is a short transaction."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        db = self._connect()
        # Switching to WAL needs the database to itself; once it is WAL (the server switches it
        # before its workers start), a worker only reads the mode and never waits.
        if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            db.execute("PRAGMA journal_mode=WAL")
        _migrate(db)  # tables of an earlier release, before the schema's indexes need them
        db.executescript(SCHEMA)
        _migrate(db)  # and tables the schema just made, whose columns it does not all name

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
            [getattr(record, name) for name in _SESSION_COLUMNS],
        )

    def update_session(self, session_id: str, **values: object) -> None:
        assignments = ", ".join(f"{name} = ?" for name in values)
        self._connect().execute(
            f"UPDATE sessions SET {assignments} WHERE id = ?", [*values.values(), session_id]
        )

    def get_session(self, session_id: str) -> SessionRecord | None:
        row = (
            self._connect()
            .execute(
                f"SELECT {', '.join(_SESSION_COLUMNS)} FROM sessions WHERE id = ?", (session_id,)
            )
            .fetchone()
        )
        return SessionRecord(*row) if row else None

    def sessions(self, state: str | None = None) -> list[SessionRecord]:
        query = f"SELECT {', '.join(_SESSION_COLUMNS)} FROM sessions"
        rows = (
            self._connect().execute(query + " WHERE state = ? ORDER BY created", (state,))
            if state
            else self._connect().execute(query + " ORDER BY created")
        )
        return [SessionRecord(*row) for row in rows]

    def delete_session(self, session_id: str) -> None:
        self._connect().execute("DELETE FROM sessions WHERE id = ?", (session_id,))

    def touch_sessions(self, activity: dict[str, float]) -> None:
        """Record the latest activity of several sessions in one transaction."""
        db = self._connect()
        db.execute("BEGIN")
        db.executemany(
            "UPDATE sessions SET last_activity = max(last_activity, ?) WHERE id = ?",
            [(when, session_id) for session_id, when in activity.items()],
        )
        db.execute("COMMIT")

    # -- launch log ------------------------------------------------------------------------

    def count_sessions(
        self, repo_url: str | None = None, client: str | None = None, address: str | None = None
    ) -> int:
        """Sessions launching or running, for admission (optionally of one repository, or
        launched by one client, or from one address)."""
        query = "SELECT count(*) FROM sessions WHERE state IN ('launching', 'warm', 'running')"
        for column, value in (("repo_url", repo_url), ("client", client), ("address", address)):
            if value is not None:
                return self._connect().execute(f"{query} AND {column} = ?", (value,)).fetchone()[0]
        return self._connect().execute(query).fetchone()[0]

    def claim_warm(
        self,
        image: str,
        now: float,
        client: str = "",
        client_limit: int = 0,
        address: str = "",
        address_limit: int = 0,
    ) -> SessionRecord | None:
        """Hand one warm session of `image` to a user, atomically across worker processes; not
        when `client` already has `client_limit` sessions, or its `address` `address_limit`
        (0: no limit)."""
        row = (
            self._connect()
            .execute(
                f"UPDATE sessions SET state = 'running', created = ?, last_activity = ?, "
                f"client = ?, address = ? WHERE id = (SELECT id FROM sessions WHERE state = "
                f"'warm' AND image = ? ORDER BY created LIMIT 1) "
                f"AND (? = 0 OR (SELECT count(*) FROM sessions WHERE client = ? AND state IN "
                f"('launching', 'running')) < ?) "
                f"AND (? = 0 OR (SELECT count(*) FROM sessions WHERE address = ? AND state IN "
                f"('launching', 'running')) < ?) "
                f"RETURNING {', '.join(_SESSION_COLUMNS)}",
                (
                    now,
                    now,
                    client,
                    address,
                    image,
                    client_limit,
                    client,
                    client_limit,
                    address_limit,
                    address,
                    address_limit,
                ),
            )
            .fetchone()
        )
        return SessionRecord(*row) if row else None

    # -- what each client has open (per-client limits) -------------------------------------

    def open_request(self, client: str, address: str = "") -> int:
        """Record an open launch request (event stream) of `client`; its id."""
        cursor = self._connect().execute(
            "INSERT INTO client_requests (client, address, started) VALUES (?, ?, ?)",
            (client, address, time.time()),
        )
        return int(cursor.lastrowid or 0)

    def mark_building(self, request_id: int, image: str = "") -> None:
        self._connect().execute(
            "UPDATE client_requests SET building = 1, image = ? WHERE id = ?", (image, request_id)
        )

    def close_request(self, request_id: int) -> None:
        self._connect().execute("DELETE FROM client_requests WHERE id = ?", (request_id,))

    def client_requests(self, client: str, since: float = 0.0) -> tuple[int, int]:
        """(open requests, images they wait for or have built) of one client, counting those
        opened after `since` (older ones were left by a worker that died)."""
        row = self._connect().execute(
            "SELECT count(*), count(DISTINCT CASE WHEN building = 1 THEN image END) "
            "FROM client_requests WHERE client = ? AND started > ?",
            (client, since),
        )
        streams, building = row.fetchone()
        return int(streams), int(building)

    def access_failures(self, client: str, since: float, address: str | None = None) -> int:
        """Wrong access codes since `since` from one client (or, with `address`, from everyone
        behind that address)."""
        column, value = ("address", address) if address is not None else ("client", client)
        row = self._connect().execute(
            f"SELECT count(*) FROM access_failures WHERE {column} = ? AND time > ?", (value, since)
        )
        return int(row.fetchone()[0])

    def add_access_failure(self, client: str, now: float, address: str = "") -> None:
        db = self._connect()
        db.execute(
            "INSERT INTO access_failures (client, address, time) VALUES (?, ?, ?)",
            (client, address, now),
        )
        db.execute("DELETE FROM access_failures WHERE time < ?", (now - 86400,))

    def forget_requests(self) -> None:
        """At start-up: requests of processes that are gone are not open any more."""
        self._connect().execute("DELETE FROM client_requests")

    def fact(self, name: str) -> str | None:
        """A fact learnt once and kept (the host URL users reach us at, what an engine
        enforces)."""
        found = self._connect().execute("SELECT value FROM facts WHERE name = ?", (name,))
        row = found.fetchone()
        return row[0] if row else None

    def remember(self, name: str, value: str) -> None:
        self._connect().execute(
            "INSERT INTO facts (name, value) VALUES (?, ?) ON CONFLICT(name) "
            "DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def last_host_url(self) -> str | None:
        return self.fact("host_url")

    def remember_host_url(self, url: str) -> None:
        self.remember("host_url", url)

    def pool_overrides(self) -> list[PoolOverride]:
        """Warm pool sizes the operator set while minibinder ran (sessions/pool.py says which
        are in force)."""
        rows = self._connect().execute(
            "SELECT spec, size, file_size, set_at, set_by FROM pool ORDER BY spec"
        )
        return [PoolOverride(*row) for row in rows]

    def set_pool_target(
        self, spec: str, size: int, file_size: int | None, now: float, set_by: str
    ) -> None:
        self._connect().execute(
            "INSERT INTO pool (spec, size, file_size, set_at, set_by) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(spec) DO UPDATE SET size = excluded.size, file_size = "
            "excluded.file_size, set_at = excluded.set_at, set_by = excluded.set_by",
            (spec, size, file_size, now, set_by),
        )

    def forget_pool_target(self, spec: str) -> None:
        self._connect().execute("DELETE FROM pool WHERE spec = ?", (spec,))

    def pool_notes(self) -> dict[str, str]:
        """Why each pool is short of its size, as the background job last found (one worker
        runs it; every worker's page and `doctor` read it)."""
        rows = self._connect().execute(
            "SELECT name, value FROM facts WHERE name LIKE 'pool-note:%' AND value != ''"
        )
        return {name.removeprefix("pool-note:"): value for name, value in rows}

    def note_pool(self, spec: str, note: str) -> None:
        """Keep why the pool of `spec` is short ("" once it is not)."""
        self.remember(f"pool-note:{spec}", note)

    def add_oom(self, session_id: str) -> None:
        self._connect().execute(
            "UPDATE sessions SET oom_count = oom_count + 1 WHERE id = ?", (session_id,)
        )

    # -- launch log ------------------------------------------------------------------------

    def record_launch(
        self,
        provider: str,
        spec: str,
        resolved_ref: str,
        status: str,
        build_seconds: float | None,
        launch_seconds: float | None,
        client_ip: str | None,
        image: str = "",
        when: float | None = None,
        user: str = "",
        session: str = "",
        private: bool = False,
        restored: int = 0,
    ) -> None:
        when = when or time.time()
        db = self._connect()
        db.execute(
            "INSERT INTO launches (time, provider, spec, resolved_ref, status, build_seconds, "
            "launch_seconds, client_ip, image, user, session, private, restored) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                when,
                provider,
                spec,
                resolved_ref,
                status,
                build_seconds,
                launch_seconds,
                client_ip,
                image,
                user,
                session,
                int(private),
                restored,
            ),
        )
        if image and status == "success":
            self.mark_image_used(image, when)

    def end_launch(self, session: str, reason: str) -> None:
        """Say in the launch log how the session a launch started ended."""
        self._connect().execute(
            "UPDATE launches SET ended = ? WHERE session = ? AND ended = ''", (reason, session)
        )

    def launches(self, limit: int = 100, since: float = 0.0) -> list[dict]:
        return self._rows(
            "SELECT * FROM launches WHERE time >= ? ORDER BY id DESC LIMIT ?", (since, limit)
        )

    def erase_ips_before(self, cutoff: float) -> int:
        """Forget client IPs of launches older than `cutoff`; return how many were erased."""
        cursor = self._connect().execute(
            "UPDATE launches SET client_ip = NULL WHERE time < ? AND client_ip IS NOT NULL",
            (cutoff,),
        )
        return cursor.rowcount

    # -- images and samples ----------------------------------------------------------------

    def mark_image_used(self, name: str, when: float | None = None) -> None:
        self._connect().execute(
            "INSERT INTO images (name, last_used) VALUES (?, ?) ON CONFLICT(name) DO UPDATE "
            "SET last_used = max(last_used, excluded.last_used)",
            (name, when or time.time()),
        )

    def image_last_used(self) -> dict[str, float]:
        return dict(self._connect().execute("SELECT name, last_used FROM images"))

    def forget_image(self, name: str) -> None:
        self._connect().execute("DELETE FROM images WHERE name = ?", (name,))

    def add_sample(self, when: float, sessions: int) -> None:
        db = self._connect()
        db.execute("INSERT INTO samples (time, sessions) VALUES (?, ?)", (when, sessions))
        db.execute("DELETE FROM samples WHERE time < ?", (when - 7 * 86400,))

    def samples(self, since: float) -> list[tuple[float, int]]:
        return list(
            self._connect().execute(
                "SELECT time, sessions FROM samples WHERE time >= ? ORDER BY time", (since,)
            )
        )

    def _rows(self, query: str, parameters: tuple) -> list[dict]:
        db = self._connect()
        db.row_factory = sqlite3.Row
        try:
            return [dict(row) for row in db.execute(query, parameters)]
        finally:
            db.row_factory = None


def _migrate(db: sqlite3.Connection) -> None:
    for table, column, declaration in MIGRATIONS:
        exists = db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone()
        columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if exists and column not in columns:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
