"""Identical bytes stored once, and expired files revalidated instead of fetched blindly, on
the local folder and on an S3-compatible bucket alike (a real SeaweedFS server)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest
import pytest_twisted

from mediapipe.naming import source_hash
from tests import media
from tests.storeviews import LocalView

if TYPE_CHECKING:
    from tests.conftest import Crawl, CrawlResult
    from tests.mockserver import MockServer
    from tests.storeviews import StoreView

DAY = 86400


def entry_of(store: StoreView, source: str) -> dict[str, Any] | None:
    return store.index_entry(source_hash(source))


def age(store: StoreView, source: str, days: float) -> None:
    store.set_index_field(source_hash(source), "stored_at", time.time() - days * DAY)


def inode(store: StoreView, name: str) -> int:
    assert isinstance(store, LocalView)
    return (store.root / name).stat().st_ino


def records(result: CrawlResult) -> list[dict[str, Any]]:
    return [dict(record) for item in result.items for record in item["media"]]


# -- deduplication ---------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_second_source_with_the_same_bytes_is_not_stored_again(
    crawl: Crawl, server: MockServer, store: StoreView
) -> None:
    first_url, second_url = f"{server.url}/img/png", f"{server.url}/img/notes.txt"
    first = await crawl([{"images": [first_url]}], store.settings())
    second = await crawl([{"images": [second_url]}], store.settings())
    (one,), (two,) = records(first), records(second)
    assert (one["status"], two["status"]) == ("downloaded", "downloaded")
    assert one["sha256"] == two["sha256"]
    assert second.stat("mediapipe/deduplicated") == 1
    assert second.stat("mediapipe/stored_files") == 0
    assert second.stat("mediapipe/stored_bytes") == 0
    assert "1 deduplicated" in crawl.caplog.records[-1].getMessage()
    files = store.files()
    if store.kind == "local":
        # Each source keeps its own name; the bytes are on disk once (a hard link).
        assert one["path"] != two["path"]
        assert files == {one["path"]: media.PNG, two["path"]: media.PNG}
        assert inode(store, one["path"]) == inode(store, two["path"])
    else:
        # In a bucket the second source's record points at the first object.
        assert two["path"] == one["path"]
        assert files == {one["path"]: media.PNG}
    entry = entry_of(store, second_url)
    assert entry is not None
    assert entry["path"] == two["path"]
    assert second.items[0]["images"][0].startswith(f"/media/{two['path']}?url=")
    # And it is reused like any stored file.
    server.reset()
    third = await crawl([{"images": [second_url]}], store.settings())
    assert records(third)[0]["status"] == "uptodate"
    assert server.requested == []


@pytest_twisted.ensureDeferred
async def test_replacing_the_first_file_never_changes_what_the_second_source_gets(
    crawl: Crawl, server: MockServer, store: StoreView
) -> None:
    first_url, second_url = f"{server.url}/img/png", f"{server.url}/img/notes.txt"
    (one,) = records(await crawl([{"images": [first_url]}], store.settings()))
    await crawl([{"images": [second_url]}], store.settings())
    store.replace(one["path"], media.GIF)  # the first source changed under its name
    server.reset()
    again = await crawl([{"images": [second_url]}], store.settings())
    (two,) = records(again)
    assert store.files()[two["path"]] == media.PNG
    if store.kind == "local":
        assert two["status"] == "uptodate"  # its own link still holds its bytes
        assert server.requested == []
    else:
        # The shared object is another one now: the entry is not trusted, the source is
        # fetched again and stored as itself.
        assert two["status"] == "downloaded"
        assert two["path"] != one["path"]
        assert server.requested == ["/img/notes.txt"]


@pytest_twisted.ensureDeferred
async def test_deduplication_can_be_turned_off(
    crawl: Crawl, server: MockServer, store: StoreView
) -> None:
    settings = store.settings({"MEDIAPIPE_DEDUPLICATE": False})
    (one,) = records(await crawl([{"images": [f"{server.url}/img/png"]}], settings))
    second = await crawl([{"images": [f"{server.url}/img/notes.txt"]}], settings)
    (two,) = records(second)
    assert second.stat("mediapipe/deduplicated") == 0
    assert second.stat("mediapipe/stored_bytes") == len(media.PNG)
    assert store.files() == {one["path"]: media.PNG, two["path"]: media.PNG}
    if store.kind == "local":
        assert inode(store, one["path"]) != inode(store, two["path"])


# -- revalidation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "asked"),
    [
        ("/versioned/both", {"If-None-Match": '"v1"', "If-Modified-Since": "LM"}),
        ("/versioned/etag", {"If-None-Match": '"v1"'}),
        ("/versioned/last-modified", {"If-Modified-Since": "LM"}),
    ],
)
@pytest.mark.parametrize("not_modified_type", ["image/png", "text/html"])
@pytest_twisted.ensureDeferred
async def test_an_expired_file_is_revalidated_and_a_304_keeps_it(
    crawl: Crawl,
    server: MockServer,
    store: StoreView,
    route: str,
    asked: dict[str, str],
    not_modified_type: str,
) -> None:
    versioned = server.versioned[route]
    versioned.not_modified_type = not_modified_type
    url = f"{server.url}{route}"
    (first,) = records(await crawl([{"images": [url]}], store.settings()))
    assert first["status"] == "downloaded"
    entry = entry_of(store, url)
    assert entry is not None
    assert entry["etag"] == versioned.validators().get("ETag")
    assert entry["last_modified"] == versioned.validators().get("Last-Modified")
    age(store, url, 91)
    before = time.time()

    second = await crawl([{"images": [url]}], store.settings())
    (again,) = records(second)
    expected = {
        name: versioned.validators()["Last-Modified"] if value == "LM" else value
        for name, value in asked.items()
    }
    assert versioned.conditions == [{}, expected]
    assert (again["status"], again["path"], again["sha256"]) == (
        "uptodate",
        first["path"],
        first["sha256"],
    )
    assert second.stat("mediapipe/revalidated") == 1
    assert second.stat("mediapipe/status/uptodate") == 1
    assert second.stat("mediapipe/stored_files") == 0
    assert second.warnings == []
    assert second.items[0]["images"] == [f"/media/{first['path']}?url={_quoted(url)}"]
    assert store.files() == {first["path"]: media.PNG}
    refreshed = entry_of(store, url)
    assert refreshed is not None
    assert refreshed["stored_at"] >= before

    # Its age started again: the next crawl asks nothing.
    third = await crawl([{"images": [url]}], store.settings())
    assert records(third)[0]["status"] == "uptodate"
    assert len(versioned.conditions) == 2


@pytest_twisted.ensureDeferred
async def test_a_changed_file_answers_200_and_is_stored_anew(
    crawl: Crawl, server: MockServer, store: StoreView
) -> None:
    versioned = server.versioned["/versioned/both"]
    url = f"{server.url}/versioned/both"
    (_first,) = records(await crawl([{"images": [url]}], store.settings()))
    versioned.change(media.GIF)
    age(store, url, 91)
    second = await crawl([{"images": [url]}], store.settings())
    (again,) = records(second)
    assert versioned.conditions[-1]["If-None-Match"] == '"v1"'
    assert again["status"] == "downloaded"
    assert again["mime"] == "image/gif"
    assert second.stat("mediapipe/revalidated") == 0
    assert store.files()[again["path"]] == media.GIF
    entry = entry_of(store, url)
    assert entry is not None
    assert entry["etag"] == '"v2"'


@pytest_twisted.ensureDeferred
async def test_without_validators_an_expired_file_is_fetched_plainly(
    crawl: Crawl, server: MockServer, store: StoreView
) -> None:
    versioned = server.versioned["/versioned/none"]
    url = f"{server.url}/versioned/none"
    await crawl([{"images": [url]}], store.settings())
    age(store, url, 91)
    second = await crawl([{"images": [url]}], store.settings({"MEDIAPIPE_DEDUPLICATE": False}))
    assert versioned.conditions == [{}, {}]
    assert records(second)[0]["status"] == "downloaded"


@pytest_twisted.ensureDeferred
async def test_expires_zero_asks_the_server_every_time(
    crawl: Crawl, server: MockServer, store: StoreView
) -> None:
    versioned = server.versioned["/versioned/etag"]
    url = f"{server.url}/versioned/etag"
    settings = store.settings({"MEDIAPIPE_EXPIRES": 0})
    await crawl([{"images": [url]}], settings)
    for _ in range(2):
        result = await crawl([{"images": [url]}], settings)
        assert records(result)[0]["status"] == "uptodate"
        assert result.stat("mediapipe/revalidated") == 1
    assert versioned.conditions == [{}, {"If-None-Match": '"v1"'}, {"If-None-Match": '"v1"'}]


@pytest_twisted.ensureDeferred
async def test_an_unasked_304_is_a_failure(
    crawl: Crawl, server: MockServer, store: StoreView
) -> None:
    url = f"{server.url}/status/304"
    result = await crawl([{"images": [url]}], store.settings())
    (record,) = records(result)
    assert (record["status"], record["reason"]) == ("failed", "http-304")
    assert result.warnings == [f"Media (failed: http-304): {url}"]
    assert store.files() == {}


def _quoted(url: str) -> str:
    from urllib.parse import quote

    return quote(url, safe="")
