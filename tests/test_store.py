"""The local-folder store: atomic commits, reuse index, sweeping, confinement (§7.3–7.4, §8)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from mediapipe.store import FilesystemStore, StorageError

if TYPE_CHECKING:
    from pathlib import Path

KEY = "0123456789abcdef"


def commit(store: FilesystemStore, data: bytes, name: str, key: str = KEY) -> None:
    temp = store.new_temp()
    temp.write(data)
    store.commit(temp, name, key, mime="image/png", width=1, height=2, credentials=False)


@pytest.fixture
def store(tmp_path: Path) -> FilesystemStore:
    opened = FilesystemStore(tmp_path / "media")
    opened.open()
    return opened


def test_store_folder_is_created_on_open_not_before(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path / "a" / "b")
    assert not (tmp_path / "a").exists()
    store.open()
    assert (tmp_path / "a" / "b").is_dir()


def test_commit_renames_into_place_and_indexes(store: FilesystemStore) -> None:
    temp = store.new_temp()
    temp.write(b"abc")
    temp.write(memoryview(b"def"))
    record = store.commit(
        temp, "x.png", KEY, mime="image/png", width=3, height=4, credentials=False
    )
    assert (store.root / "x.png").read_bytes() == b"abcdef"
    assert not temp.path.exists()
    assert record.sha256 == "bef57ec7f53a6d40beb640a780a639c83bc29ac8a9816f1fc6c5c6dcd93c4721"
    assert (record.path, record.size, record.width, record.height) == ("x.png", 6, 3, 4)
    assert store.lookup(KEY, 90) == record


def test_lookup_respects_age_and_presence(store: FilesystemStore) -> None:
    commit(store, b"data", "y.png")
    assert store.lookup(KEY, 90) is not None
    assert store.lookup(KEY, 0) is None
    index = next((store.root / ".mediapipe" / "index").rglob("*.json"))
    entry = json.loads(index.read_text())
    entry["stored_at"] = time.time() - 2 * 86400
    index.write_text(json.dumps(entry))
    assert store.lookup(KEY, 3) is not None
    assert store.lookup(KEY, 1) is None
    (store.root / "y.png").write_bytes(b"changed size")
    assert store.lookup(KEY, 3) is None
    (store.root / "y.png").unlink()
    assert store.lookup(KEY, 3) is None
    assert store.lookup("ffffffffffffffff", 3) is None


def test_corrupt_index_entry_means_not_stored(store: FilesystemStore) -> None:
    commit(store, b"data", "z.png")
    index = next((store.root / ".mediapipe" / "index").rglob("*.json"))
    index.write_text("{not json")
    assert store.lookup(KEY, 90) is None


def test_recommit_replaces_the_old_file_atomically(store: FilesystemStore) -> None:
    commit(store, b"old", "same.png")
    commit(store, b"new", "same.png")
    assert (store.root / "same.png").read_bytes() == b"new"


def test_discarded_temp_leaves_nothing(store: FilesystemStore) -> None:
    temp = store.new_temp()
    temp.write(b"partial")
    temp.discard()
    assert list((store.root / ".mediapipe" / "tmp").iterdir()) == []
    assert [p.name for p in store.root.iterdir()] == [".mediapipe"]


@pytest.mark.parametrize(
    "name", ["../escape.png", "/etc/passwd", "a/../../b.png", ".mediapipe/index/x", ""]
)
def test_names_never_leave_the_store(store: FilesystemStore, name: str) -> None:
    temp = store.new_temp()
    temp.write(b"x")
    with pytest.raises(StorageError, match="would leave the media store"):
        store.commit(temp, name, KEY, mime=None, width=None, height=None, credentials=False)
    assert not (store.root.parent / "escape.png").exists()


@pytest.mark.parametrize(
    ("link", "points_to", "name"),
    [
        ("out", "../outside", "out/escape.png"),
        ("deep", "../outside", "deep/a/b.png"),
        ("meta", ".mediapipe/index", "meta/x.json"),
        ("up", "..", "up/outside/escape.png"),
    ],
)
def test_symlinks_inside_the_store_cannot_lead_out(
    store: FilesystemStore, link: str, points_to: str, name: str
) -> None:
    outside = store.root.parent / "outside"
    outside.mkdir()
    (store.root / link).symlink_to(points_to)
    temp = store.new_temp()
    temp.write(b"x")
    with pytest.raises(StorageError, match="leads out of the media store"):
        store.commit(temp, name, KEY, mime=None, width=None, height=None, credentials=False)
    assert list(outside.rglob("*")) == []
    assert list((store.root / ".mediapipe" / "tmp").iterdir()) == []
    assert not (store.root / ".mediapipe" / "index" / "x.json").exists()


def test_symlinked_folder_within_the_store_is_fine(store: FilesystemStore) -> None:
    (store.root / "real").mkdir()
    (store.root / "alias").symlink_to("real")
    commit(store, b"x", "alias/f.png")
    assert (store.root / "real" / "f.png").read_bytes() == b"x"


def test_subfolder_names_are_created(store: FilesystemStore) -> None:
    commit(store, b"x", "sub/dir/f.png")
    assert (store.root / "sub" / "dir" / "f.png").read_bytes() == b"x"


def test_sweep_removes_leftovers_of_dead_processes_only(store: FilesystemStore) -> None:
    tmp = store.root / ".mediapipe" / "tmp"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    (tmp / f"{dead_pid}-aaaa-1.part").write_bytes(b"partial")
    (tmp / "garbage.part").write_bytes(b"?")
    (tmp / f"{os.getppid()}-bbbb-2.part").write_bytes(b"live")  # a running process
    live = store.new_temp()
    live.write(b"mine")
    removed = FilesystemStore(store.root).sweep()
    assert removed == 2
    assert sorted(p.name for p in tmp.iterdir()) == sorted(
        [f"{os.getppid()}-bbbb-2.part", live.path.name]
    )
    live.discard()


def test_unwritable_store_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StorageError, match="cannot create or write the media store"):
        FilesystemStore(blocker / "media").open()


def test_storage_errors_at_commit_keep_nothing(store: FilesystemStore) -> None:
    commit(store, b"x", "taken")
    temp = store.new_temp()
    temp.write(b"y")
    with pytest.raises(StorageError):
        store.commit(
            temp, "taken/child.png", KEY, mime=None, width=None, height=None, credentials=False
        )
    assert not temp.path.exists()
    assert (store.root / "taken").read_bytes() == b"x"
