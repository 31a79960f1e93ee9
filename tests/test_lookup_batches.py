"""Reuse lookups: the sources asked for together (an item's) reach the store's lookup threads
as one job per thread, and each source still gets its own answer or its own failure."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

import pytest
import pytest_twisted
from scrapy.settings import Settings
from scrapy.utils.defer import deferred_from_coro

from mediapipe.reuse import Reuse
from mediapipe.settings import MediaConfig
from mediapipe.stats import MediaStats
from mediapipe.store.files import FileFacts
from mediapipe.store.local import FilesystemStore
from tests import media

if TYPE_CHECKING:
    from concurrent.futures import Future
    from pathlib import Path

    from mediapipe.store.files import StoredFile

BROKEN = "key-the-disk-refuses"
BUGGY = "key-that-hits-a-bug"


class RecordingStore(FilesystemStore):
    """A real local store that notes the thread of each lookup, and fails two keys."""

    def __init__(self, root: Path, lookup_threads: int = 1) -> None:
        super().__init__(root)
        self.lookup_threads = lookup_threads
        self.looked_up: list[tuple[str, int]] = []

    def lookup(self, key: str) -> StoredFile | None:
        self.looked_up.append((key, threading.get_ident()))
        if key == BROKEN:
            raise OSError(5, "Input/output error")
        if key == BUGGY:
            raise RuntimeError("a bug in the store")
        return super().lookup(key)


def stored_keys(store: FilesystemStore, count: int) -> dict[str, StoredFile]:
    records = {}
    for number in range(count):
        temp = store.new_temp()
        temp.write(media.PNG + bytes([number]))
        key = f"stored-{number}"
        facts = FileFacts(mime="image/png", width=8, height=6, credentials=False)
        records[key] = store.commit(temp, f"file-{number}.png", key, facts)
    return records


async def asking(reuse: Reuse, keys: list[str]) -> list[StoredFile | BaseException | None]:
    """Every key asked at once, as an item's sources are."""
    return await asyncio.gather(*(reuse.stored(key) for key in keys), return_exceptions=True)


async def ask_all(
    store: RecordingStore, keys: list[str]
) -> tuple[list[StoredFile | BaseException | None], list[int], MediaStats]:
    """Every key asked at once of a fresh Reuse over the open ``store``, which is closed after:
    the answers, the number of keys of each job handed to the lookup threads, the stats."""
    reuse, jobs, stats = reuse_of(store)
    try:
        answers = await deferred_from_coro(asking(reuse, keys))
    finally:
        reuse.shutdown()
        store.close()
    return answers, jobs, stats


def reuse_of(store: FilesystemStore) -> tuple[Reuse, list[int], MediaStats]:
    stats = MediaStats(None)
    reuse = Reuse(MediaConfig.from_settings(Settings()), store, stats)
    jobs: list[int] = []
    submit = reuse._executor.submit

    def counted(function: Any, *args: Any) -> Future[Any]:
        jobs.append(len(args[-1]))  # the keys of this job
        return submit(function, *args)

    reuse._executor.submit = counted  # type: ignore[method-assign,assignment]
    return reuse, jobs, stats


@pytest_twisted.ensureDeferred
async def test_an_items_sources_are_looked_up_in_one_job(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path / "store")
    store.open()
    records = stored_keys(store, 5)
    keys = [*records, *(f"new-{number}" for number in range(15))]
    answers, jobs, _ = await ask_all(store, keys)
    assert jobs == [20]
    assert [key for key, _ in store.looked_up] == keys
    assert len({thread for _, thread in store.looked_up}) == 1
    assert answers[:5] == list(records.values())
    assert answers[5:] == [None] * 15


@pytest_twisted.ensureDeferred
async def test_a_store_with_more_lookup_threads_gets_one_job_per_thread(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path / "store", lookup_threads=4)
    store.open()
    keys = [f"new-{number}" for number in range(18)]
    answers, jobs, _ = await ask_all(store, keys)
    assert jobs == [5, 5, 5, 3]
    assert sorted(key for key, _ in store.looked_up) == sorted(keys)
    assert answers == [None] * 18


@pytest_twisted.ensureDeferred
async def test_each_source_gets_its_own_failure(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path / "store")
    store.open()
    records = stored_keys(store, 1)
    keys = [BROKEN, "stored-0", BUGGY, "new-0", "stored-0"]
    answers, jobs, stats = await ask_all(store, keys)
    assert jobs == [4]  # the key asked twice is looked up once
    # The store could not answer: a download, counted; a bug: that source's error alone.
    assert answers[0] is None
    assert stats.counts["lookup_failed"] == 1
    assert isinstance(answers[2], RuntimeError)
    assert answers[1] == answers[4] == records["stored-0"]
    assert answers[3] is None


@pytest_twisted.ensureDeferred
async def test_a_lookup_after_shutdown_fails_instead_of_waiting(tmp_path: Path) -> None:
    store = RecordingStore(tmp_path / "store")
    store.open()
    reuse, _, _ = reuse_of(store)
    reuse.shutdown()

    try:
        with pytest.raises(RuntimeError, match="shutdown"):
            await deferred_from_coro(asyncio.wait_for(reuse.stored("new-0"), timeout=5))
    finally:
        store.close()
    assert store.looked_up == []
