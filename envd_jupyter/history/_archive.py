"""The build archive: one SQLite file in WAL mode that several kernels write and a server reads.

It keeps what BuildKit does not (notebook, cell, state, the scheduling cycle's records, the
Definition's graph) and the summary of every build past the daemon's own retention. Writes are
single short ``BEGIN IMMEDIATE`` transactions; every connection waits up to ``busy_timeout`` for
another process's lock instead of failing. Size is bounded: past ``max_records`` rows or
``max_bytes`` of stored JSON, the oldest unpinned entries go first, in the writing transaction
(copies of daemon summaries before the entries kernels wrote).

Only the keys in ``SUMMARY_KEYS`` and ``DETAIL_KEYS`` are stored, nothing else a caller passes.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterable

from envd_jupyter._errors import ShortError

SCHEMA_VERSION = 1
DEFAULT_MAX_RECORDS = 2_000
DEFAULT_MAX_BYTES = 256 << 20
MAX_ENTRY_BYTES = 8 << 20  # past this an entry's graph, then its steps, are dropped ("truncated": true)
SUMMARY_KEYS = ("id", "builder", "address", "notebook", "cell_id", "state", "name", "created", "completed",
                "status", "error", "total", "cached", "ran")
DETAIL_KEYS = ("steps", "graph", "scheduling", "secrets")  # secrets: the ids a build was offered, never values
_TEXT_KEYS = {"id", "builder", "address", "notebook", "cell_id", "state", "name", "status", "error"}
_REAL_KEYS = {"created", "completed"}
_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS builds (
    id TEXT PRIMARY KEY, builder TEXT NOT NULL DEFAULT '', address TEXT NOT NULL DEFAULT '',
    notebook TEXT NOT NULL DEFAULT '', cell_id TEXT NOT NULL DEFAULT '', state TEXT NOT NULL DEFAULT '',
    name TEXT NOT NULL DEFAULT '', created REAL, completed REAL, status TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT '', total INTEGER NOT NULL DEFAULT 0, cached INTEGER NOT NULL DEFAULT 0,
    ran INTEGER NOT NULL DEFAULT 0, pinned INTEGER NOT NULL DEFAULT 0, origin TEXT NOT NULL DEFAULT 'kernel',
    truncated INTEGER NOT NULL DEFAULT 0, detail TEXT, size INTEGER NOT NULL DEFAULT 0,
    seq INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS write_counter (value INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS builds_created ON builds (created);
CREATE INDEX IF NOT EXISTS builds_seq ON builds (seq);
CREATE INDEX IF NOT EXISTS builds_builder ON builds (builder, created);
"""


class ArchiveError(ShortError):
    """The archive file cannot be opened, is of a newer schema, or a write failed."""


def default_path() -> Path:
    """``$ENVD_JUPYTER_HISTORY``, else ``$XDG_DATA_HOME`` (or ~/.local/share)/envd-jupyter/history.sqlite3."""
    if os.environ.get("ENVD_JUPYTER_HISTORY"):
        return Path(os.environ["ENVD_JUPYTER_HISTORY"]).expanduser()
    data = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data / "envd-jupyter" / "history.sqlite3"


def _clean_summary(entry: dict) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for key in SUMMARY_KEYS:
        value = entry.get(key)
        if key in _TEXT_KEYS:
            row[key] = "" if value is None else str(value)
        elif key in _REAL_KEYS:
            row[key] = None if value is None else float(value)
        else:
            row[key] = int(value or 0)
    if not row["id"]:
        raise ArchiveError("an archive entry needs an id (the solve ref)")
    return row


def _detail_text(entry: dict) -> tuple[str, bool]:
    """The JSON of steps/graph/scheduling; too big, it loses the graph, then the steps."""
    detail = {key: entry.get(key) for key in DETAIL_KEYS}
    text = json.dumps(detail, separators=(",", ":"), default=str)
    truncated = False
    for dropped in ("graph", "steps", "scheduling"):
        if len(text) <= MAX_ENTRY_BYTES:
            break
        detail[dropped], truncated = None, True
        text = json.dumps(detail, separators=(",", ":"), default=str)
    return text, truncated


class Archive:
    """The archive at ``path`` (``default_path()`` when None), created on first use."""

    def __init__(self, path: str | Path | None = None, *, max_records: int = DEFAULT_MAX_RECORDS,
                 max_bytes: int = DEFAULT_MAX_BYTES, busy_timeout: float = 10.0):
        self.path = Path(path).expanduser() if path else default_path()
        self.max_records, self.max_bytes, self.busy_timeout = max_records, max_bytes, busy_timeout
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"<history.Archive {self.path}>"

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                new = not self.path.exists()
                # Never open and close the file ourselves: closing any descriptor of it drops every SQLite
                # lock this process holds on it, and another process may then delete the WAL under us.
                db = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                                     check_same_thread=False)
                if new:
                    os.chmod(self.path, 0o600)  # before any row is written; -wal/-shm take the same mode
            except (OSError, sqlite3.Error) as exc:
                raise ArchiveError(f"build archive {self.path}: {exc}") from None
            try:
                db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = NORMAL")
                self._migrate(db)
            except BaseException as exc:
                db.close()
                if isinstance(exc, sqlite3.Error):
                    raise ArchiveError(f"build archive {self.path}: {exc}") from None
                raise
            self._db = db
        return self._db

    def _migrate(self, db: sqlite3.Connection) -> None:
        """Create the schema once; an archive already at this version is only read (no write lock taken)."""
        try:
            row = db.execute("SELECT version FROM schema_version").fetchone()
        except sqlite3.OperationalError:  # no such table: a new file
            row = None
        if row is not None and row[0] == SCHEMA_VERSION:
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            # executescript would commit on its own: the statements run one by one in this transaction
            for statement in filter(str.strip, _SCHEMA.split(";")):
                db.execute(statement)
            row = db.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
                db.execute("INSERT INTO write_counter (value) VALUES (0)")
            elif row[0] > SCHEMA_VERSION:
                raise ArchiveError(f"build archive {self.path} has schema {row[0]}, newer than this "
                                   f"envd-jupyter's {SCHEMA_VERSION}: upgrade it, or set another path")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _write(self, statements: Iterable[tuple[str, tuple]]) -> int:
        """Run the statements and the pruning in one transaction; returns the rows the statements changed."""
        with self._lock:
            db = self._connection()
            changed = 0
            try:
                db.execute("BEGIN IMMEDIATE")
                for sql, params in statements:
                    changed += db.execute(sql, params).rowcount
                self._prune(db)
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise ArchiveError(f"build archive {self.path}: {exc}") from None
            return changed

    def _read(self, *queries: tuple[str, tuple]) -> list[list[dict]]:
        """Rows of each query, all read from one snapshot of the file."""
        with self._lock:
            db = self._connection()
            try:
                db.execute("BEGIN")
                answers = []
                for sql, params in queries:
                    cursor = db.execute(sql, params)
                    columns = [c[0] for c in cursor.description]
                    answers.append([dict(zip(columns, row)) for row in cursor.fetchall()])
                db.execute("COMMIT")
                return answers
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise ArchiveError(f"build archive {self.path}: {exc}") from None

    def _prune(self, db: sqlite3.Connection) -> None:
        count, size = db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM builds").fetchone()
        if count <= self.max_records and size <= self.max_bytes:
            return
        doomed = []
        # Copies of daemon summaries go before the entries kernels wrote (those hold what no daemon keeps).
        for build_id, entry_size in db.execute(
                "SELECT id, size FROM builds WHERE pinned = 0"
                " ORDER BY origin = 'kernel', COALESCE(created, 0), id"):
            if count <= self.max_records and size <= self.max_bytes:
                break
            doomed.append((build_id,))
            count, size = count - 1, size - entry_size
        db.executemany("DELETE FROM builds WHERE id = ?", doomed)

    def add(self, entry: dict) -> None:
        """Store one build (replacing an entry with the same id, keeping its pin)."""
        row = _clean_summary(entry)
        detail, truncated = _detail_text(entry)
        row.update(detail=detail, truncated=int(truncated), size=len(detail) + 512, origin="kernel")
        columns = ", ".join(row)
        updates = ", ".join(f"{key} = excluded.{key}" for key in [*row, "seq"] if key != "id")
        self._write([("UPDATE write_counter SET value = value + 1", ()),
                     (f"INSERT INTO builds ({columns}, seq) VALUES ({', '.join('?' * len(row))}, "
                      f"(SELECT value FROM write_counter)) ON CONFLICT (id) DO UPDATE SET {updates}",
                      tuple(row.values()))])

    def remember(self, builder: str, address: str, records: Iterable[Any]) -> None:
        """Copy the daemon's summaries (``buildkit.HistoryRecord``s) so they outlive its retention.

        An entry a kernel wrote keeps its notebook, cell, state and detail; only finished builds are kept.
        """
        finished = sorted((r for r in records if r.status != "running"), key=lambda r: r.created or 0.0,
                          reverse=True)[:self.max_records]  # older ones would only be pruned again
        statements = []
        for record in finished:
            row = {"id": record.ref, "builder": builder, "address": address, "name": record.name,
                   "created": record.created, "completed": record.completed, "status": record.status,
                   "error": record.error, "total": record.steps_total, "cached": record.steps_cached,
                   "ran": max(0, record.steps_completed - record.steps_cached)}
            statements.append((
                "INSERT INTO builds (id, builder, address, name, created, completed, status, error, total, cached,"
                " ran, origin, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'daemon', 512) ON CONFLICT (id) DO"
                " UPDATE SET status = excluded.status, completed = excluded.completed WHERE builds.origin = 'daemon'"
                " AND (builds.status != excluded.status OR builds.completed IS NOT excluded.completed)",
                tuple(row.values())))
        if statements:
            self._write(statements)

    def list(self, *, builder: str | None = None, status: str | None = None, name: str | None = None,
             offset: int = 0, limit: int | None = 50) -> tuple[list[dict], int]:
        """Summaries (no steps or graph), newest first, and how many match in all."""
        where, params = ["1 = 1"], []
        for column, value in (("builder", builder), ("status", status)):
            if value:
                where.append(f"{column} = ?")
                params.append(value)
        if name:
            escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("(name LIKE ? ESCAPE '\\' OR state LIKE ? ESCAPE '\\')")
            params += [f"%{escaped}%"] * 2
        clause = " AND ".join(where)
        page = -1 if limit is None else max(0, limit)
        counted, rows = self._read(
            (f"SELECT COUNT(*) AS n FROM builds WHERE {clause}", tuple(params)),
            (f"SELECT {', '.join(SUMMARY_KEYS)}, pinned, origin, truncated FROM builds WHERE {clause}"
             " ORDER BY COALESCE(created, 0) DESC, id LIMIT ? OFFSET ?", (*params, page, max(0, offset))))
        return [_summary(row) for row in rows], counted[0]["n"]

    def changes(self, after: int = 0) -> tuple[list[dict], int]:
        """Summaries kernels wrote (or rewrote) after write number ``after``, oldest first, and the
        latest write number: a server polls this (cheaply) to tell the panel about new builds, since a
        ``%%envd`` build's daemon record completes only when its stage closes."""
        counter, rows = self._read(
            ("SELECT value FROM write_counter", ()),
            (f"SELECT {', '.join(SUMMARY_KEYS)}, pinned, origin, truncated FROM builds WHERE seq > ?"
             " ORDER BY seq", (max(0, after),)))
        return [_summary(row) for row in rows], counter[0]["value"]

    def get(self, build_id: str) -> dict | None:
        """One entry with its steps, graph and scheduling (None for what was never kept)."""
        [rows] = self._read((f"SELECT {', '.join(SUMMARY_KEYS)}, pinned, origin, truncated, detail FROM builds"
                             " WHERE id = ?", (build_id,)))
        if not rows:
            return None
        row = rows[0]
        detail = json.loads(row.pop("detail") or "{}")
        return {**_summary(row), **{key: detail.get(key) for key in DETAIL_KEYS}}

    def pin(self, build_id: str, pinned: bool = True) -> bool:
        """Keep (or stop keeping) an entry past the bounds; False when there is no such entry."""
        return self._write([("UPDATE builds SET pinned = ? WHERE id = ?", (int(pinned), build_id))]) > 0

    def delete(self, build_id: str) -> bool:
        return self._write([("DELETE FROM builds WHERE id = ?", (build_id,))]) > 0

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> "Archive":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _summary(row: dict) -> dict:
    row["pinned"] = bool(row["pinned"])
    row["truncated"] = bool(row["truncated"])
    return row
