"""A store written against the documented protocol alone (mediapipe.store.MediaStore), plugged
in through MEDIAPIPE_STORE_SCHEMES: downloads, reuse and revalidation work through it."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest_twisted

from mediapipe.store import FileFacts, StorageError, StoredFile, TempFile
from mediapipe.store.files import entry_from
from mediapipe.store.temp import TempFolder
from tests import media

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

    from mediapipe.settings import MediaConfig
    from mediapipe.store import MediaStore
    from tests.conftest import Crawl
    from tests.mockserver import MockServer


class JsonFolderStore:
    """``jsonfolder:///path``: files in a folder, the whole index in one JSON file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._temps = TempFolder(root / "_tmp")
        self._index_path = root / "_index.json"
        self._lock = threading.Lock()
        self.calls: list[str] = []

    @classmethod
    def from_config(cls, config: MediaConfig, settings: BaseSettings) -> JsonFolderStore:
        return cls(Path(str(config.store).removeprefix("jsonfolder://")))

    def open(self) -> None:
        try:
            self._temps.prepare()
        except OSError as exc:
            raise StorageError(f"cannot use {self.root}: {exc}") from exc
        self._temps.sweep()

    def new_temp(self) -> TempFile:
        return self._temps.new_temp()

    def _index(self) -> dict[str, Any]:
        if not self._index_path.exists():
            return {}
        data: dict[str, Any] = json.loads(self._index_path.read_text())
        return data

    def _write(self, key: str, record: StoredFile) -> None:
        with self._lock:
            index = self._index()
            index[key] = {
                name: getattr(record, name)
                for name in ("path", "size", "sha256", "mime", "width", "height", "stored_at")
            } | {"credentials": record.credentials, "etag": record.etag}
            self._index_path.write_text(json.dumps(index))

    def lookup(self, key: str) -> StoredFile | None:
        self.calls.append("lookup")
        with self._lock:
            data = self._index().get(key)
        record = None if data is None else entry_from(data)
        if record is None or not (self.root / record.path).is_file():
            return None
        return record

    def commit(
        self, temp: TempFile, name: str, key: str, facts: FileFacts, *, may_share: bool = True
    ) -> StoredFile:
        self.calls.append("commit")
        temp.close()
        record = facts.stored(name, temp.size, temp.sha256, time.time())
        os.replace(temp.path, self.root / name)
        self._write(key, record)
        return record

    def refresh(self, key: str, stored: StoredFile) -> StoredFile:
        self.calls.append("refresh")
        fresh = stored.refreshed(time.time())
        self._write(key, fresh)
        return fresh

    def close(self) -> None:
        self.calls.append("close")


STORES: list[JsonFolderStore] = []


class RecordedJsonFolderStore(JsonFolderStore):
    @classmethod
    def from_config(cls, config: MediaConfig, settings: BaseSettings) -> JsonFolderStore:
        store = super().from_config(config, settings)
        STORES.append(store)
        return store


@pytest_twisted.ensureDeferred
async def test_a_store_of_ones_own_downloads_reuses_and_revalidates(
    crawl: Crawl, server: MockServer, tmp_path: Path
) -> None:
    root = tmp_path / "own"
    settings = {
        "MEDIAPIPE_STORE": f"jsonfolder://{root}",
        "MEDIAPIPE_STORE_SCHEMES": {"jsonfolder": f"{__name__}.RecordedJsonFolderStore"},
    }
    url = f"{server.url}/versioned/etag"
    STORES.clear()
    first = await crawl([{"images": [url]}], settings)
    (record,) = first.items[0]["media"]
    assert record["status"] == "downloaded"
    assert (root / record["path"]).read_bytes() == media.PNG
    assert json.loads((root / "_index.json").read_text()).popitem()[1]["etag"] == '"v1"'
    assert STORES[-1].calls == ["lookup", "commit", "close"]

    second = await crawl([{"images": [url]}], settings)
    assert second.items[0]["media"][0]["status"] == "uptodate"
    assert STORES[-1].calls == ["lookup", "close"]

    third = await crawl([{"images": [url]}], settings | {"MEDIAPIPE_EXPIRES": 0})
    assert third.items[0]["media"][0]["status"] == "uptodate"
    assert third.stat("mediapipe/revalidated") == 1
    assert STORES[-1].calls == ["lookup", "refresh", "close"]
    assert server.versioned["/versioned/etag"].conditions == [{}, {"If-None-Match": '"v1"'}]
    assert sorted(path.name for path in root.iterdir()) == sorted(
        ["_index.json", "_tmp", record["path"]]
    )


def test_the_store_meets_the_protocol_as_typed(tmp_path: Path) -> None:
    # mypy checks this assignment against mediapipe.store.MediaStore, member by member.
    store: MediaStore = JsonFolderStore(tmp_path)
    store.open()
    assert store.lookup("0" * 16) is None
    store.close()
