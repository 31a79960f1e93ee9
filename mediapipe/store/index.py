"""The reuse index: which stored file holds each source, in one SQLite database per store.

The database lives at ``.mediapipe/index.sqlite3`` in WAL mode, so that lookups read while a
commit writes and several processes can share one store. SQLite connections belong to the
thread that uses them: each thread (the reactor's lookup worker, every writer lane) gets its
own, and :meth:`ReuseIndex.close` closes them all.

Each entry is written in a transaction of its own, by the writer thread that commits its file,
before the file's rename. Writes are not batched: in WAL mode with ``synchronous=NORMAL`` a
transaction is an append to the log without an fsync, about 28 µs (measured on 5,000 entries),
while a batch would make each rename wait for the others' entries.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import sqlite3
import threading
from typing import TYPE_CHECKING, Any

from mediapipe.store.files import StoredFile, entry_from

if TYPE_CHECKING:
    from pathlib import Path

logger = logging.getLogger(__name__)

DATABASE = "index.sqlite3"
# Where 0.1 kept its entries: one JSON file per source, <meta>/index/<h16[:2]>/<h16>.json.
LEGACY_FOLDER = "index"
# How long a writer waits for another one (another lane, another process) to finish.
BUSY_TIMEOUT_S = 30.0


_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    mime TEXT,
    width INTEGER,
    height INTEGER,
    stored_at REAL NOT NULL,
    credentials INTEGER NOT NULL,
    etag TEXT,
    last_modified TEXT
) WITHOUT ROWID
"""
# Finds a file with given bytes among all entries, for deduplication.
_CONTENT_INDEX = "CREATE INDEX IF NOT EXISTS entries_by_content ON entries (sha256, size)"
# Columns added after the first databases were written, with their type.
_ADDED_COLUMNS = {"etag": "TEXT", "last_modified": "TEXT"}
_FIELDS = (
    "path",
    "size",
    "sha256",
    "mime",
    "width",
    "height",
    "stored_at",
    "credentials",
    "etag",
    "last_modified",
)
_COLUMNS = ", ".join(_FIELDS)
_PLACES = ", ".join("?" * (len(_FIELDS) + 1))
_UPSERT = f"INSERT OR REPLACE INTO entries (key, {_COLUMNS}) VALUES ({_PLACES})"
# A migrated 0.1 entry never replaces a newer one another process has written meanwhile.
_MIGRATE = (
    f"INSERT INTO entries (key, {_COLUMNS}) VALUES ({_PLACES}) ON CONFLICT(key) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _FIELDS)
    + " WHERE excluded.stored_at > entries.stored_at"
)


def _os_error(exc: sqlite3.Error, what: str) -> OSError:
    # An OSError, as every other refusal of the store's file system is.
    code = getattr(exc, "sqlite_errorcode", None)
    number = errno.ENOSPC if code == sqlite3.SQLITE_FULL else errno.EIO
    return OSError(number, f"{what}: {exc}")


def _row(key: str, record: StoredFile) -> tuple[Any, ...]:
    return (
        key,
        record.path,
        record.size,
        record.sha256,
        record.mime,
        record.width,
        record.height,
        record.stored_at,
        int(record.credentials),
        record.etag,
        record.last_modified,
    )


def _entry(row: tuple[Any, ...]) -> StoredFile | None:
    return entry_from(dict(zip(_FIELDS, row, strict=True)))


class ReuseIndex:
    """Source key → :class:`StoredFile`, shared by the threads and processes of one store."""

    def __init__(self, meta: Path) -> None:
        self.path = meta / DATABASE
        self._legacy = meta / LEGACY_FOLDER
        self._local = threading.local()
        self._lock = threading.Lock()
        self._serial = threading.Lock()
        self._connections: list[sqlite3.Connection] = []

    def open(self, *, secondary: bool = False) -> None:
        """Create or check the database, and carry a 0.1 store's JSON entries into it."""
        if secondary:
            # A second opener of a database another process of the crawl opened, checked and
            # migrated already: it only connects. Repairing it here would unlink files under
            # the first opener's live connections.
            try:
                self._connection().execute("SELECT 1 FROM entries LIMIT 1").fetchall()
            except sqlite3.Error as exc:
                self.close()
                raise _os_error(exc, f"cannot open the reuse index {self.path}") from exc
            return
        try:
            self._prepare()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError):
                self.close()
                raise _os_error(exc, f"cannot open the reuse index {self.path}") from exc
            # A torn or foreign file: the index only caches what the store holds, so it is
            # set aside and rebuilt; files already stored are then downloaded once more.
            self.close()
            aside = self.path.with_name(DATABASE + ".corrupt")
            logger.warning(
                "The reuse index %s is damaged (%s): moved to %s and started anew; "
                "stored files will be downloaded again once",
                self.path,
                exc,
                aside.name,
            )
            try:
                os.replace(self.path, aside)
                for suffix in ("-wal", "-shm"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(f"{self.path}{suffix}")
                self._prepare()
            except (OSError, sqlite3.Error) as again:
                self.close()
                raise OSError(
                    errno.EIO, f"cannot rebuild the reuse index {self.path}: {again}"
                ) from again
        try:
            self._migrate()
        except sqlite3.Error as exc:
            self.close()
            raise _os_error(exc, f"cannot migrate the reuse index {self.path}") from exc

    def _prepare(self) -> None:
        connection = self._connection()
        if connection.execute("PRAGMA quick_check(1)").fetchone()[0] != "ok":
            raise sqlite3.DatabaseError("quick_check failed")
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(_SCHEMA)
        present = {row[1] for row in connection.execute("PRAGMA table_info(entries)")}
        for name, kind in _ADDED_COLUMNS.items():
            if name not in present:
                connection.execute(f"ALTER TABLE entries ADD COLUMN {name} {kind}")
        connection.execute(_CONTENT_INDEX)

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            # check_same_thread=False only so close() can close every thread's connection:
            # each connection is still used by its own thread alone.
            connection = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            try:
                # A commit is then not flushed to disk each time: a power loss may forget the
                # last entries, which costs downloads, never a wrong answer.
                connection.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error:
                connection.close()
                raise
            with self._lock:
                self._connections.append(connection)
            self._local.connection = connection
        return connection

    def _rows(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        # One statement at a time in this process. Connections that collide inside SQLite
        # wait in its busy handler, which sleeps in steps of milliseconds: measured in a
        # crawl, that made a 10 µs lookup take about 1 ms. A lock wakes the next one at once.
        with self._serial:
            return self._connection().execute(sql, params).fetchall()

    def _change(self, sql: str, params: tuple[Any, ...]) -> int:
        with self._serial:
            return self._connection().execute(sql, params).rowcount

    def get(self, key: str) -> StoredFile | None:
        """The entry of ``key``; an unreadable index counts as holding nothing."""
        try:
            rows = self._rows(f"SELECT {_COLUMNS} FROM entries WHERE key = ?", (key,))
        except sqlite3.Error:
            return None
        return _entry(rows[0]) if rows else None

    def paths_with_content(self, sha256: str, size: int, other_than: str) -> list[str]:
        """Paths of a few files indexed with these bytes; an unreadable index has none."""
        try:
            rows = self._rows(
                "SELECT path FROM entries WHERE sha256 = ? AND size = ? AND path != ? LIMIT 4",
                (sha256, size, other_than),
            )
        except sqlite3.Error:
            return []
        return [path for (path,) in rows if isinstance(path, str)]

    def touch(self, key: str, record: StoredFile, stored_at: float) -> bool:
        """Give ``key``'s entry a new age if it is still ``record``; whether it was."""
        try:
            changed = self._change(
                "UPDATE entries SET stored_at = ? WHERE key = ? AND sha256 = ? AND path = ?",
                (stored_at, key, record.sha256, record.path),
            )
        except sqlite3.Error as exc:
            raise _os_error(exc, f"cannot refresh {record.path} in the reuse index") from exc
        return changed == 1

    def put(self, key: str, record: StoredFile) -> None:
        try:
            self._change(_UPSERT, _row(key, record))
        except sqlite3.Error as exc:
            raise _os_error(exc, f"cannot record {record.path} in the reuse index") from exc

    def forget(self, key: str, record: StoredFile) -> None:
        """Remove ``key``'s entry if it is still ``record`` (another writer may have replaced
        it since)."""
        with contextlib.suppress(sqlite3.Error):
            self._change(
                "DELETE FROM entries WHERE key = ? AND sha256 = ? AND stored_at = ?",
                (key, record.sha256, record.stored_at),
            )

    def _migrate(self) -> None:
        if not self._legacy.is_dir():
            return
        files: list[str] = []
        rows: list[tuple[Any, ...]] = []
        for folder, _, names in os.walk(self._legacy):
            for name in names:
                path = os.path.join(folder, name)
                files.append(path)
                record = _legacy_entry(path)
                if record is not None:
                    rows.append(_row(name.removesuffix(".json"), record))
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.executemany(_MIGRATE, rows)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        # Removed only once the database holds them: a run killed in between migrates the
        # same entries again. Removed rather than kept, so that 0.1 run on this store later
        # re-downloads instead of trusting entries this version may since have replaced.
        for path in files:
            with contextlib.suppress(OSError):
                os.unlink(path)
        for folder, _, _ in sorted(os.walk(self._legacy), reverse=True):
            with contextlib.suppress(OSError):
                os.rmdir(folder)
        if rows:
            logger.info(
                "Carried %d reuse entries of an earlier version into %s", len(rows), self.path
            )

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()
        self._local = threading.local()


def _legacy_entry(path: str) -> StoredFile | None:
    """A 0.1 entry file: keys path, size, sha256, mime, width, height, stored_at."""
    try:
        with open(path, encoding="utf-8") as entry:
            data = json.load(entry)
        return StoredFile(
            path=str(data["path"]),
            size=int(data["size"]),
            sha256=str(data["sha256"]),
            mime=data.get("mime"),
            width=data.get("width"),
            height=data.get("height"),
            stored_at=float(data["stored_at"]),
            # 0.1 did not record it: counted as credentialed, so provenance is left off.
            credentials=bool(data.get("credentials", True)),
        )
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
