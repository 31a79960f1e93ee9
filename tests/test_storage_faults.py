"""The store under real file-system faults: a full disk, no inodes, a read-only or unusable folder
(README "Failure", contract §7.4 and §9).

The faults come from small tmpfs mounts (the tests run as root). Where mounting is impossible,
a full disk is simulated by a byte budget shared by every temporary file.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import subprocess
from typing import TYPE_CHECKING, Any

import pytest
import pytest_twisted

from mediapipe import store as store_module
from mediapipe.settings import SettingError
from tests import media
from tests.mockserver import body, streamed
from tests.storecheck import leftovers, stored_files

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.conftest import Crawl, CrawlResult
    from tests.mockserver import MockServer

MiB = 1024 * 1024
# An MP4 header (ftyp box, isom brand) padded to 64 KiB; big bodies repeat it.
MP4_CHUNK = media.MP4 + bytes(64 * 1024 - len(media.MP4))
BIG_CHUNKS = 11  # 704 KiB per big body: two fit in 2 MiB, a third does not
SMALL_COLORS = ("red", "green", "blue")


# -- helpers -------------------------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def mount_tmpfs(target: Path, options: str) -> bool:
    target.mkdir(parents=True, exist_ok=True)
    run = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
        capture_output=True,
        check=False,
    )
    return run.returncode == 0


def unmount(target: Path) -> None:
    subprocess.run(["umount", str(target)], capture_output=True, check=False)


class Mounts:
    """tmpfs mounts made by one test, all unmounted by its finalizer."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.made: list[Path] = []

    def __call__(self, name: str, options: str) -> Path | None:
        target = self.base / name
        if not mount_tmpfs(target, options):
            return None
        self.made.append(target)
        return target

    def remount(self, target: Path, options: str) -> None:
        subprocess.run(
            ["mount", "-o", f"remount,{options}", str(target)], capture_output=True, check=True
        )

    def close(self) -> None:
        for target in reversed(self.made):
            unmount(target)


@pytest.fixture
def mounts(tmp_path: Path) -> Iterator[Mounts]:
    made = Mounts(tmp_path / "mnt")
    try:
        yield made
    finally:
        made.close()


class ByteBudget:
    """A simulated full disk: temporary files together may hold ``capacity`` bytes."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used: dict[str, int] = {}

    def release(self, size: int) -> None:
        """Give back the room of a stored file that was deleted."""
        self.used["released"] = self.used.get("released", 0) - size

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real_write = store_module.TempFile.write
        real_discard = store_module.TempFile.discard
        budget = self

        def write(temp: store_module.TempFile, data: bytes | memoryview) -> None:
            key = os.fspath(temp.path)
            held = sum(budget.used.values())
            if held + len(data) > budget.capacity:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), key)
            budget.used[key] = budget.used.get(key, 0) + len(data)
            real_write(temp, data)

        def discard(temp: store_module.TempFile) -> None:
            budget.used.pop(os.fspath(temp.path), None)
            real_discard(temp)

        monkeypatch.setattr(store_module.TempFile, "write", write)
        monkeypatch.setattr(store_module.TempFile, "discard", discard)


def small_fs(
    mounts: Mounts, monkeypatch: pytest.MonkeyPatch, name: str, size: int
) -> tuple[Path, ByteBudget | None]:
    """A store folder on a file system of ``size`` bytes: a tmpfs, else a simulated one (then
    its budget is returned too)."""
    mounted = mounts(name, f"size={size}")
    if mounted is not None:
        return mounted, None
    budget = ByteBudget(size)
    budget.install(monkeypatch)
    fallback = mounts.base / name
    fallback.mkdir(parents=True, exist_ok=True)
    return fallback, budget


def serve_media(server: MockServer, bigs: int) -> dict[str, bytes]:
    """Register a few small PNGs and ``bigs`` bodies of 704 KiB; return the source URL → bytes."""
    expected: dict[str, bytes] = {}
    for index, color in enumerate(SMALL_COLORS):
        payload = media.image_bytes("PNG", (index + 3, index + 2), color)
        server.httpd.routes[f"/fs/small-{index}.png"] = body(payload, "image/png")
        expected[f"{server.url}/fs/small-{index}.png"] = payload
    for index in range(bigs):
        chunk = MP4_CHUNK[:-1] + bytes([index])  # distinct bytes per body
        server.httpd.routes[f"/fs/big-{index}.mp4"] = streamed(
            chunk, BIG_CHUNKS, "video/mp4", length=True, delay=0
        )
        expected[f"{server.url}/fs/big-{index}.mp4"] = chunk * BIG_CHUNKS
    return expected


def check_store_after_faults(result: CrawlResult, store: Path, expected: dict[str, bytes]) -> None:
    """What must hold whatever fitted: every record is downloaded or a storage failure, final
    files have exactly their source's bytes, nothing else is in the store, no leftovers, one
    WARNING and one stat count per failure."""
    (item,) = result.items
    records = {record["source"]: record for record in item["media"]}
    assert set(records) == set(expected)
    outcomes = {(r["status"], r["reason"]) for r in records.values()}
    assert outcomes <= {("downloaded", None), ("failed", "storage")}, records

    files = stored_files(store)
    by_source = {
        source: record["path"] for source, record in records.items() if record["path"] is not None
    }
    # No partial file under a final name: every final file is exactly one stored source.
    assert sorted(files) == sorted(by_source.values())
    for source, path in by_source.items():
        assert files[path] == expected[source], f"{path} does not hold the bytes of {source}"
        assert records[source]["sha256"] == sha256(expected[source])
        assert records[source]["size"] == len(expected[source])
    for source, record in records.items():
        if record["status"] == "failed":
            assert record["path"] is None
            assert record["url"] == source
            assert item["images"][list(expected).index(source)] == source

    assert leftovers(store) == []
    failed = [s for s, r in records.items() if r["status"] == "failed"]
    assert result.stat("mediapipe/failed/storage") == len(failed)
    storage_warnings = [w for w in result.warnings if "failed: storage" in w]
    assert len(storage_warnings) == len(failed), result.warnings
    for source in failed:
        assert sum(source in w for w in storage_warnings) == 1, (source, result.warnings)


# -- a full file system ----------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_full_disk_one_file_at_a_time(
    crawl: Crawl, server: MockServer, mounts: Mounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one download at a time the outcome is exact: the small files and two big bodies
    fit in 2 MiB, the other three big bodies fail with ``storage`` and leave nothing behind."""
    store, _ = small_fs(mounts, monkeypatch, "full-serial", 2 * MiB)
    expected = serve_media(server, bigs=5)

    result = await crawl(
        [{"images": list(expected), "tags": ["full"]}],
        {"MEDIAPIPE_STORE": str(store), "MEDIAPIPE_MAX_SIZE": 0, "CONCURRENT_REQUESTS": 1},
    )

    check_store_after_faults(result, store, expected)
    records = {r["source"]: r for r in result.items[0]["media"]}
    small = [s for s in expected if "/small-" in s]
    big = [s for s in expected if "/big-" in s]
    assert all(records[s]["status"] == "downloaded" for s in small)
    assert sorted(records[s]["status"] for s in big) == ["downloaded"] * 2 + ["failed"] * 3
    assert result.stat("mediapipe/status/downloaded") == len(small) + 2
    assert result.stat("mediapipe/stored_files") == len(small) + 2
    assert result.stat("mediapipe/stored_bytes") == sum(
        len(expected[s]) for s in expected if records[s]["status"] == "downloaded"
    )


@pytest_twisted.ensureDeferred
async def test_full_disk_with_concurrent_downloads(
    crawl: Crawl, server: MockServer, mounts: Mounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Concurrent bodies race for the last free pages: which of them fit is not fixed, but at
    least one cannot, and no outcome may leave a partial or stray file."""
    store, _ = small_fs(mounts, monkeypatch, "full-concurrent", 2 * MiB)
    expected = serve_media(server, bigs=5)

    result = await crawl(
        [{"images": list(expected)}], {"MEDIAPIPE_STORE": str(store), "MEDIAPIPE_MAX_SIZE": 0}
    )

    check_store_after_faults(result, store, expected)
    assert result.stat("mediapipe/failed/storage") >= 1
    assert result.stat("mediapipe/items") == 1


@pytest_twisted.ensureDeferred
async def test_full_disk_then_space_again(
    crawl: Crawl, server: MockServer, mounts: Mounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A storage failure is not remembered across crawls: once there is room, the next crawl
    stores what failed, and reuses what was stored."""
    store, budget = small_fs(mounts, monkeypatch, "full-again", 2 * MiB)
    expected = serve_media(server, bigs=3)
    settings: dict[str, Any] = {
        "MEDIAPIPE_STORE": str(store),
        "MEDIAPIPE_MAX_SIZE": 0,
        "CONCURRENT_REQUESTS": 1,
    }
    first = await crawl([{"images": list(expected)}], settings)
    check_store_after_faults(first, store, expected)
    failed = [r["source"] for r in first.items[0]["media"] if r["status"] == "failed"]
    assert len(failed) == 1

    # Free the space of the stored big bodies; ask again for the failed one and the small ones.
    for record in first.items[0]["media"]:
        if record["status"] == "downloaded" and "/big-" in record["source"]:
            path = store / record["path"]
            if budget is not None:
                budget.release(path.stat().st_size)
            path.unlink()
    small = [s for s in expected if "/small-" in s]
    server.reset()

    second = await crawl([{"images": [failed[0], *small]}], settings)

    records = {r["source"]: r for r in second.items[0]["media"]}
    assert records[failed[0]]["status"] == "downloaded"
    assert all(records[s]["status"] == "uptodate" for s in small)
    assert server.requested == ["/fs/" + failed[0].rsplit("/", 1)[1]]
    assert leftovers(store) == []
    files = stored_files(store)
    assert sorted(files) == sorted(r["path"] for r in records.values())
    for source, record in records.items():
        assert files[record["path"]] == expected[source]


@pytest_twisted.ensureDeferred
async def test_full_disk_for_data_uris(
    crawl: Crawl, mounts: Mounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``data:`` URIs are decoded into the store too: a full disk fails them with ``storage``."""
    import base64

    store, _ = small_fs(mounts, monkeypatch, "full-data", 1 * MiB)
    big = MP4_CHUNK * 20  # 1.25 MiB: cannot fit in 1 MiB
    small = media.PNG
    sources = {
        "data:video/mp4;base64," + base64.b64encode(big).decode(): big,
        "data:image/png;base64," + base64.b64encode(small).decode(): small,
    }

    # One item at a time, the small one first: it is stored before the big one fills the disk.
    result = await crawl(
        [{"images": [source]} for source in reversed(sources)],
        {
            "MEDIAPIPE_STORE": str(store),
            "MEDIAPIPE_MAX_SIZE": 0,
            "CONCURRENT_ITEMS": 1,
            "LOG_LEVEL": "INFO",
        },
        log_level=logging.INFO,
    )

    (small_record,), (big_record,) = (item["media"] for item in result.items)
    assert (big_record["status"], big_record["reason"]) == ("failed", "storage")
    assert small_record["status"] == "data"
    assert stored_files(store) == {small_record["path"]: small}
    assert leftovers(store) == []
    assert result.stat("mediapipe/failed/storage") == 1
    assert len([w for w in result.warnings if "failed: storage" in w]) == 1


@pytest_twisted.ensureDeferred
async def test_no_inodes_left_for_the_index(
    crawl: Crawl, server: MockServer, mounts: Mounts
) -> None:
    """The file system runs out of inodes after the body is written: the commit's index entry
    cannot be created. The source must then fail with ``storage`` and the store keep nothing
    of it (README "Failure": "the store keeps nothing of it") — or it is stored, index and all.
    Never a file under a final name for a source reported as failed."""
    # Inodes: the root, .mediapipe, tmp, the index database and its -wal and -shm files, the
    # temp file (renamed into place) — and nothing left for anything else the commit creates.
    store = mounts("no-inodes", "size=1m,nr_inodes=7")
    if store is None:
        pytest.fail("cannot mount a tmpfs (the test needs root)")
    url = f"{server.url}/img/png"

    result = await crawl([{"images": [url]}], {"MEDIAPIPE_STORE": str(store)})

    (record,) = result.items[0]["media"]
    files = stored_files(store)
    assert leftovers(store) == []
    if record["status"] == "failed":
        assert record["reason"] == "storage"
        assert files == {}, f"a failed source left {sorted(files)} in the store"
    else:
        assert record["status"] == "downloaded"
        assert files == {record["path"]: media.PNG}


@pytest_twisted.ensureDeferred
async def test_body_that_fills_the_disk_to_the_last_page(
    crawl: Crawl, server: MockServer, mounts: Mounts
) -> None:
    """The same fault on pages instead of inodes: a 2 MiB body on a 2 MiB tmpfs is written
    whole, renamed into place, and then its index entry finds no free page."""
    store = mounts("last-page", "size=2m")
    if store is None:
        pytest.fail("cannot mount a tmpfs (the test needs root)")
    server.httpd.routes["/fs/fills.mp4"] = streamed(
        MP4_CHUNK, 32, "video/mp4", length=True, delay=0
    )
    url = f"{server.url}/fs/fills.mp4"

    result = await crawl(
        [{"images": [url]}], {"MEDIAPIPE_STORE": str(store), "MEDIAPIPE_MAX_SIZE": 0}
    )

    (record,) = result.items[0]["media"]
    files = stored_files(store)
    assert leftovers(store) == []
    if record["status"] == "failed":
        assert record["reason"] == "storage"
        assert files == {}, f"a failed source left {sorted(files)} in the store"
    else:
        assert files == {record["path"]: MP4_CHUNK * 32}


# -- a store that cannot be created or written ---------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_store_below_a_regular_file(crawl: Crawl, server: MockServer, tmp_path: Path) -> None:
    blocker = tmp_path / "plain-file"
    blocker.write_bytes(b"x")
    store = blocker / "deeper" / "store"

    with pytest.raises(SettingError, match="MEDIAPIPE_STORE") as failure:
        await crawl([{"images": [f"{server.url}/img/png"]}], {"MEDIAPIPE_STORE": str(store)})

    assert str(store) in str(failure.value)
    assert server.requested == []


@pytest_twisted.ensureDeferred
async def test_store_whose_meta_folder_is_a_file(
    crawl: Crawl, server: MockServer, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (store / ".mediapipe").write_bytes(b"in the way")

    with pytest.raises(SettingError, match="MEDIAPIPE_STORE"):
        await crawl([{"images": [f"{server.url}/img/png"]}], {"MEDIAPIPE_STORE": str(store)})

    assert server.requested == []
    assert (store / ".mediapipe").read_bytes() == b"in the way"


@pytest.mark.parametrize("below", [False, True], ids=["mount-point", "sub-folder"])
@pytest_twisted.ensureDeferred
async def test_store_on_a_read_only_file_system(
    crawl: Crawl, server: MockServer, mounts: Mounts, below: bool
) -> None:
    mounted = mounts("ro", "ro,size=1m")
    if mounted is None:
        pytest.fail("cannot mount a tmpfs (the test needs root)")
    store = mounted / "store" if below else mounted

    with pytest.raises(SettingError, match="MEDIAPIPE_STORE") as failure:
        await crawl([{"images": [f"{server.url}/img/png"]}], {"MEDIAPIPE_STORE": str(store)})

    assert str(store) in str(failure.value)
    assert server.requested == []


@pytest_twisted.ensureDeferred
async def test_existing_store_made_read_only(
    crawl: Crawl, server: MockServer, mounts: Mounts
) -> None:
    """Folders that exist but cannot take files: the start-up probe must catch it."""
    store = mounts("ro-existing", "size=1m")
    if store is None:
        pytest.fail("cannot mount a tmpfs (the test needs root)")
    first = await crawl([{"images": [f"{server.url}/img/png"]}], {"MEDIAPIPE_STORE": str(store)})
    assert first.items[0]["media"][0]["status"] == "downloaded"
    before = stored_files(store)
    mounts.remount(store, "ro")
    server.reset()

    with pytest.raises(SettingError, match="MEDIAPIPE_STORE") as failure:
        await crawl([{"images": [f"{server.url}/img/gif"]}], {"MEDIAPIPE_STORE": str(store)})

    assert str(store) in str(failure.value)
    assert server.requested == []
    assert stored_files(store) == before


@pytest_twisted.ensureDeferred
async def test_store_without_free_inodes_fails_at_start(
    crawl: Crawl, server: MockServer, mounts: Mounts
) -> None:
    """A store whose folders exist but where no file can be created (no inodes left)."""
    store = mounts("inodes-start", "size=1m,nr_inodes=4")
    if store is None:
        pytest.fail("cannot mount a tmpfs (the test needs root)")
    (store / ".mediapipe" / "tmp").mkdir(parents=True)
    # The root, .mediapipe and tmp use three inodes; the index database takes the last one.
    (store / ".mediapipe" / "index.sqlite3").touch()

    with pytest.raises(SettingError, match="MEDIAPIPE_STORE"):
        await crawl([{"images": [f"{server.url}/img/png"]}], {"MEDIAPIPE_STORE": str(store)})

    assert server.requested == []
