"""What a test can see of a store: the media files, the reuse index, and temporary leftovers."""

from __future__ import annotations

import contextlib
import sqlite3
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

META = ".mediapipe"


def stored_files(store: Path) -> dict[str, bytes]:
    """Every file under ``store`` but the add-on's bookkeeping folders, by relative path."""
    if not store.exists():
        return {}
    return {
        path.relative_to(store).as_posix(): path.read_bytes()
        for path in store.rglob("*")
        if path.is_file() and META not in path.relative_to(store).parts
    }


def leftovers(store: Path) -> list[Path]:
    """Temporary files still in the store."""
    tmp = store / META / "tmp"
    return list(tmp.iterdir()) if tmp.exists() else []


def index_entry(store: Path, key: str) -> dict[str, Any] | None:
    """The reuse index's entry for the source hash ``key``, as stored, or None."""
    database = store / META / "index.sqlite3"
    if not database.exists():
        return None
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as connection:
        connection.row_factory = sqlite3.Row
        row = connection.execute("SELECT * FROM entries WHERE key = ?", (key,)).fetchone()
    return None if row is None else dict(row)


def index_keys(store: Path) -> list[str]:
    """Every source hash the reuse index holds."""
    with contextlib.closing(sqlite3.connect(store / META / "index.sqlite3", timeout=30)) as db:
        return sorted(key for (key,) in db.execute("SELECT key FROM entries"))


def set_index_field(store: Path, key: str, field: str, value: Any) -> None:
    """Rewrite one field of an entry, as time or a damaged store would."""
    assert field.isidentifier()
    with contextlib.closing(sqlite3.connect(store / META / "index.sqlite3", timeout=30)) as db:
        changed = db.execute(f"UPDATE entries SET {field} = ? WHERE key = ?", (value, key))
        assert changed.rowcount == 1
        db.commit()
