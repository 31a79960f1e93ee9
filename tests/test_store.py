"""The local-folder store: atomic commits, reuse index, sweeping, confinement (§7.3–7.4, §8)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from mediapipe.store import FileFacts, FilesystemStore, StorageError, StoredFile
from tests.storecheck import index_entry, index_keys, set_index_field

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

KEY = "0123456789abcdef"
NO_FACTS = FileFacts(mime=None, width=None, height=None, credentials=False)


def commit(store: FilesystemStore, data: bytes, name: str, key: str = KEY) -> None:
    temp = store.new_temp()
    temp.write(data)
    store.commit(temp, name, key, FileFacts(mime="image/png", width=1, height=2, credentials=False))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FilesystemStore]:
    opened = FilesystemStore(tmp_path / "media")
    opened.open()
    yield opened
    opened.close()


def reopened(root: Path) -> FilesystemStore:
    store = FilesystemStore(root)
    store.open()
    return store


def test_store_folder_is_created_on_open_not_before(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path / "a" / "b")
    assert not (tmp_path / "a").exists()
    store.open()
    store.close()
    assert (tmp_path / "a" / "b").is_dir()


def test_commit_renames_into_place_and_indexes(store: FilesystemStore) -> None:
    temp = store.new_temp()
    temp.write(b"abc")
    temp.write(memoryview(b"def"))
    record = store.commit(
        temp,
        "x.png",
        KEY,
        FileFacts(mime="image/png", width=3, height=4, credentials=False),
    )
    assert (store.root / "x.png").read_bytes() == b"abcdef"
    assert not temp.path.exists()
    assert record.sha256 == "bef57ec7f53a6d40beb640a780a639c83bc29ac8a9816f1fc6c5c6dcd93c4721"
    assert (record.path, record.size, record.width, record.height) == ("x.png", 6, 3, 4)
    assert store.lookup(KEY) == record


def test_lookup_finds_a_whole_file_of_any_age_and_refresh_restarts_its_age(
    store: FilesystemStore,
) -> None:
    commit(store, b"data", "y.png")
    set_index_field(store.root, KEY, "stored_at", 1000.0)
    old = store.lookup(KEY)
    assert old is not None
    assert old.stored_at == 1000.0
    fresh = store.refresh(KEY, old)
    assert time.time() - fresh.stored_at < 60
    assert index_entry(store.root, KEY)["stored_at"] == fresh.stored_at  # type: ignore[index]
    assert store.lookup(KEY) == fresh
    (store.root / "y.png").write_bytes(b"changed size")
    assert store.lookup(KEY) is None
    (store.root / "y.png").unlink()
    assert store.lookup(KEY) is None
    assert store.lookup("ffffffffffffffff") is None


def test_entry_whose_path_leaves_the_store_means_not_stored(store: FilesystemStore) -> None:
    commit(store, b"data", "z.png")
    (store.root.parent / "z.png").write_bytes(b"data")
    set_index_field(store.root, KEY, "path", "../z.png")
    assert store.lookup(KEY) is None


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
        store.commit(temp, name, KEY, NO_FACTS)
    assert not (store.root.parent / "escape.png").exists()


@pytest.mark.parametrize(
    ("link", "points_to", "name"),
    [
        ("out", "../outside", "out/escape.png"),
        ("deep", "../outside", "deep/a/b.png"),
        ("meta", ".mediapipe", "meta/index.sqlite3"),
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
        store.commit(temp, name, KEY, NO_FACTS)
    assert list(outside.rglob("*")) == []
    assert list((store.root / ".mediapipe" / "tmp").iterdir()) == []
    assert index_entry(store.root, KEY) is None


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
    removed = FilesystemStore(store.root).sweep()  # sweeping needs no open index
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
            temp,
            "taken/child.png",
            KEY,
            NO_FACTS,
        )
    assert not temp.path.exists()
    assert (store.root / "taken").read_bytes() == b"x"
    entry = index_entry(store.root, KEY)
    assert entry is not None
    assert entry["path"] == "taken"


# -- the reuse index ---------------------------------------------------------------------------


def test_entry_is_written_only_by_the_commit(store: FilesystemStore) -> None:
    temp = store.new_temp()
    temp.write(b"not yet")
    temp.close()
    assert index_entry(store.root, KEY) is None
    before = time.time()
    commit(store, b"stored", "s.png")
    entry = index_entry(store.root, KEY)
    assert entry is not None
    assert before <= entry.pop("stored_at") <= time.time()
    assert entry == {
        "key": KEY,
        "path": "s.png",
        "size": 6,
        "sha256": hashlib.sha256(b"stored").hexdigest(),
        "mime": "image/png",
        "width": 1,
        "height": 2,
        "credentials": 0,
        "etag": None,
        "last_modified": None,
    }
    temp.discard()


def test_failed_rename_leaves_no_entry_and_the_old_file(store: FilesystemStore) -> None:
    commit(store, b"old", "kept.png")
    (store.root / "busy.png").mkdir()  # a folder under the final name: the rename fails
    (store.root / "busy.png" / "inside").write_bytes(b"!")
    temp = store.new_temp()
    temp.write(b"new body")
    with pytest.raises(StorageError, match=r"cannot store busy\.png"):
        store.commit(temp, "busy.png", KEY, NO_FACTS)
    assert index_entry(store.root, KEY) is None
    assert store.lookup(KEY) is None
    assert not temp.path.exists()
    assert (store.root / "kept.png").read_bytes() == b"old"


def test_entries_survive_reopening(store: FilesystemStore) -> None:
    commit(store, b"one", "one.png", "1111111111111111")
    commit(store, b"two", "two.png", "2222222222222222")
    commit(store, b"two!", "two.png", "2222222222222222")
    store.close()
    again = reopened(store.root)
    try:
        first = again.lookup("1111111111111111")
        second = again.lookup("2222222222222222")
    finally:
        again.close()
    assert first is not None
    assert (first.path, first.size, first.credentials) == ("one.png", 3, False)
    assert second is not None
    assert (second.path, second.size) == ("two.png", 4)
    assert index_keys(store.root) == ["1111111111111111", "2222222222222222"]


def test_commits_from_many_threads_all_land(store: FilesystemStore) -> None:
    def write(n: int) -> None:
        commit(store, str(n).encode() * 3, f"t{n}.png", f"{n:016x}")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, range(200)))
    assert index_keys(store.root) == sorted(f"{n:016x}" for n in range(200))
    for n in (0, 57, 199):
        found = store.lookup(f"{n:016x}")
        assert found is not None
        assert (found.path, found.size) == (f"t{n}.png", 3 * len(str(n)))


@pytest.mark.parametrize("damage", ["garbage", "torn"])
def test_damaged_database_is_set_aside_and_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    root = tmp_path / "media"
    store = reopened(root)
    for n in range(300):
        commit(store, b"x" * 10, f"f{n}.png", f"{n:016x}")
    store.close()
    database = root / ".mediapipe" / "index.sqlite3"
    if damage == "garbage":
        database.write_bytes(b"this is not a database\n" * 300)
    else:
        data = database.read_bytes()
        assert len(data) > 8192
        database.write_bytes(data[:4096] + b"\0" * 512 + data[4608 : len(data) // 2])
    damaged = database.read_bytes()

    with caplog.at_level(logging.WARNING, logger="mediapipe.store.index"):
        store = reopened(root)
    try:
        assert store.lookup(f"{0:016x}") is None
        commit(store, b"fresh", "fresh.png")
        found = store.lookup(KEY)
    finally:
        store.close()
    assert found is not None
    assert found.path == "fresh.png"
    assert (root / ".mediapipe" / "index.sqlite3.corrupt").read_bytes() == damaged
    assert index_keys(root) == [KEY]
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "reuse index" in warning
    assert "index.sqlite3.corrupt" in warning


SHARER = """
import sys
from pathlib import Path
from mediapipe.store import FileFacts, FilesystemStore

store = FilesystemStore(Path(sys.argv[1]))
store.open()
print("ready", flush=True)
sys.stdin.readline()
for n in range(300):
    temp = store.new_temp()
    temp.write(b"child %d" % n)
    facts = FileFacts(mime=None, width=None, height=None, credentials=True)
    store.commit(temp, f"child{n}.png", f"c{n:015x}", facts)
store.close()
"""


def test_two_processes_share_one_store(store: FilesystemStore) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", SHARER, str(store.root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    assert child.stdout.readline() == "ready\n"
    child.stdin.write("go\n")
    child.stdin.close()
    for n in range(300):
        commit(store, b"parent %d" % n, f"parent{n}.png", f"p{n:015x}")
    assert child.wait(timeout=60) == 0
    child.stdout.close()
    keys = index_keys(store.root)
    assert len(keys) == 600
    assert keys == sorted([f"c{n:015x}" for n in range(300)] + [f"p{n:015x}" for n in range(300)])
    found = store.lookup(f"c{299:015x}")
    assert found == StoredFile(
        "child299.png",
        len(b"child 299"),
        hashlib.sha256(b"child 299").hexdigest(),
        None,
        None,
        None,
        found.stored_at if found else 0.0,
        True,
    )
    assert (store.root / "child299.png").read_bytes() == b"child 299"


def legacy_entry(root: Path, key: str, entry: dict[str, object]) -> Path:
    """An index entry as 0.1 wrote it: one JSON file per source."""
    path = root / ".mediapipe" / "index" / key[:2] / f"{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entry), encoding="utf-8")
    return path


def test_entries_of_version_0_1_are_carried_into_the_database(tmp_path: Path) -> None:
    root = tmp_path / "media"
    (root / ".mediapipe" / "tmp").mkdir(parents=True)
    (root / "old.png").write_bytes(b"old body")
    now = time.time()
    sha = hashlib.sha256(b"old body").hexdigest()
    entry = {
        "path": "old.png",
        "size": 8,
        "sha256": sha,
        "mime": "image/png",
        "width": 5,
        "height": 6,
        "stored_at": now - 3600,
    }
    legacy_entry(root, KEY, entry)
    legacy_entry(root, "ab00000000000000", {**entry, "size": 99})  # file of another size now
    torn = legacy_entry(root, "ff00000000000000", entry)
    torn.write_text('{"path": "old.p', encoding="utf-8")

    store = reopened(root)
    try:
        found = store.lookup(KEY)
        stale = store.lookup("ab00000000000000")
    finally:
        store.close()
    assert found == StoredFile("old.png", 8, sha, "image/png", 5, 6, now - 3600, True)
    assert stale is None
    assert index_keys(root) == ["0123456789abcdef", "ab00000000000000"]
    assert not (root / ".mediapipe" / "index").exists()
    # Once carried over, opening again finds nothing more to migrate and keeps the entries.
    reopened(root).close()
    assert index_keys(root) == ["0123456789abcdef", "ab00000000000000"]


def test_a_migrated_entry_never_replaces_a_newer_one(store: FilesystemStore) -> None:
    commit(store, b"new body", "new.png")
    store.close()
    legacy_entry(
        store.root,
        KEY,
        {
            "path": "old.png",
            "size": 3,
            "sha256": "0" * 64,
            "mime": None,
            "width": None,
            "height": None,
            "stored_at": time.time() - 86400,
        },
    )
    again = reopened(store.root)
    try:
        found = again.lookup(KEY)
    finally:
        again.close()
    assert found is not None
    assert (found.path, found.size, found.credentials) == ("new.png", 8, False)


def test_identical_bytes_are_linked_but_only_after_their_bytes_are_checked(
    store: FilesystemStore,
) -> None:
    facts = FileFacts(mime="image/png", width=1, height=1, credentials=False)
    first = store.new_temp()
    first.write(b"same bytes")
    store.commit(first, "a.png", "a" * 16, facts)
    second = store.new_temp()
    second.write(b"same bytes")
    shared = store.commit(second, "b.png", "b" * 16, facts)
    assert shared.deduplicated
    assert (store.root / "b.png").stat().st_ino == (store.root / "a.png").stat().st_ino
    # Both now hold other bytes of the same size under their old entries (a commit caught
    # between its index entry and its rename looks the same): they are not linked to.
    for name in ("a.png", "b.png"):
        (store.root / name).unlink()
        (store.root / name).write_bytes(b"SAME BYTES")
    third = store.new_temp()
    third.write(b"same bytes")
    own = store.commit(third, "c.png", "c" * 16, facts)
    assert not own.deduplicated
    assert (store.root / "c.png").read_bytes() == b"same bytes"
    assert (store.root / "c.png").stat().st_nlink == 1
    assert list((store.root / ".mediapipe" / "tmp").iterdir()) == []
