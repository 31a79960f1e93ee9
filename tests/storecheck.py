"""What a test can see of a store: the media files, and the temporary leftovers."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
