"""Identical bytes stored once, and expired files revalidated instead of fetched blindly, on
the local folder and on an S3-compatible bucket alike (a real SeaweedFS server)."""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
import pytest_twisted

from mediapipe.naming import source_hash
from tests import media
from tests.s3server import BUCKET
from tests.storecheck import index_entry, set_index_field, stored_files

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import Crawl, CrawlResult
    from tests.mockserver import MockServer
    from tests.s3server import S3Server

DAY = 86400


class Where:
    """What these tests need of a store, for either kind."""

    kind: str

    def settings(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def files(self) -> dict[str, bytes]:
        raise NotImplementedError

    def entry(self, source: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def age(self, source: str, days: float) -> None:
        raise NotImplementedError

    def replace_file(self, name: str, data: bytes) -> None:
        """Give ``name`` new bytes the way a later commit of its own source would."""
        raise NotImplementedError


@dataclass
class Folder(Where):
    root: Path
    kind: str = "local"

    def settings(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"MEDIAPIPE_STORE": str(self.root), **(extra or {})}

    def files(self) -> dict[str, bytes]:
        return stored_files(self.root)

    def entry(self, source: str) -> dict[str, Any] | None:
        return index_entry(self.root, source_hash(source))

    def age(self, source: str, days: float) -> None:
        set_index_field(self.root, source_hash(source), "stored_at", time.time() - days * DAY)

    def replace_file(self, name: str, data: bytes) -> None:
        new = self.root / f"{name}.new"
        new.write_bytes(data)
        os.replace(new, self.root / name)


@dataclass
class Bucket(Where):
    server: S3Server
    prefix: str
    temp_dir: Path
    kind: str = "s3"

    def settings(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            **self.server.settings(),
            "MEDIAPIPE_STORE": f"s3://{BUCKET}/{self.prefix}",
            "MEDIAPIPE_TEMP_DIR": str(self.temp_dir),
            **(extra or {}),
        }

    def _get(self, key: str) -> bytes:
        return bytes(self.server.client().get_object(Bucket=BUCKET, Key=key)["Body"].read())

    def files(self) -> dict[str, bytes]:
        listing = self.server.client().list_objects_v2(Bucket=BUCKET, Prefix=self.prefix)
        keys = [entry["Key"] for entry in listing.get("Contents", [])]
        return {
            key[len(self.prefix) :]: self._get(key)
            for key in keys
            if not key[len(self.prefix) :].startswith(".mediapipe/")
        }

    def _entry_key(self, source: str) -> str:
        return f"{self.prefix}.mediapipe/index/{source_hash(source)}.json"

    def entry(self, source: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self._get(self._entry_key(source)))
        except self.server.client().exceptions.NoSuchKey:
            return None
        return data

    def age(self, source: str, days: float) -> None:
        entry = self.entry(source)
        assert entry is not None
        entry["stored_at"] = time.time() - days * DAY
        self.server.client().put_object(
            Bucket=BUCKET, Key=self._entry_key(source), Body=json.dumps(entry).encode()
        )

    def replace_file(self, name: str, data: bytes) -> None:
        self.server.client().put_object(Bucket=BUCKET, Key=self.prefix + name, Body=data)


@pytest.fixture(params=["local", "s3"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Where:
    if request.param == "local":
        return Folder(tmp_path / "store")
    server: S3Server = request.getfixturevalue("s3_server")
    return Bucket(server, f"run-{uuid.uuid4().hex[:12]}/media/", tmp_path / "temp")


def records(result: CrawlResult) -> list[dict[str, Any]]:
    return [dict(record) for item in result.items for record in item["media"]]


# -- deduplication ---------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_second_source_with_the_same_bytes_is_not_stored_again(
    crawl: Crawl, server: MockServer, where: Where
) -> None:
    first_url, second_url = f"{server.url}/img/png", f"{server.url}/img/notes.txt"
    first = await crawl([{"images": [first_url]}], where.settings())
    second = await crawl([{"images": [second_url]}], where.settings())
    (one,), (two,) = records(first), records(second)
    assert (one["status"], two["status"]) == ("downloaded", "downloaded")
    assert one["sha256"] == two["sha256"]
    assert second.stat("mediapipe/deduplicated") == 1
    assert second.stat("mediapipe/stored_files") == 0
    assert second.stat("mediapipe/stored_bytes") == 0
    assert "1 deduplicated" in crawl.caplog.records[-1].getMessage()
    files = where.files()
    if where.kind == "local":
        # Each source keeps its own name; the bytes are on disk once (a hard link).
        assert one["path"] != two["path"]
        assert files == {one["path"]: media.PNG, two["path"]: media.PNG}
        assert (where.root / one["path"]).stat().st_ino == (where.root / two["path"]).stat().st_ino  # type: ignore[attr-defined]
    else:
        # In a bucket the second source's record points at the first object.
        assert two["path"] == one["path"]
        assert files == {one["path"]: media.PNG}
    entry = where.entry(second_url)
    assert entry is not None
    assert entry["path"] == two["path"]
    assert second.items[0]["images"][0].startswith(f"/media/{two['path']}?url=")
    # And it is reused like any stored file.
    server.reset()
    third = await crawl([{"images": [second_url]}], where.settings())
    assert records(third)[0]["status"] == "uptodate"
    assert server.requested == []


@pytest_twisted.ensureDeferred
async def test_replacing_the_first_file_never_changes_what_the_second_source_gets(
    crawl: Crawl, server: MockServer, where: Where
) -> None:
    first_url, second_url = f"{server.url}/img/png", f"{server.url}/img/notes.txt"
    (one,) = records(await crawl([{"images": [first_url]}], where.settings()))
    await crawl([{"images": [second_url]}], where.settings())
    where.replace_file(one["path"], media.GIF)  # the first source changed under its name
    server.reset()
    again = await crawl([{"images": [second_url]}], where.settings())
    (two,) = records(again)
    assert where.files()[two["path"]] == media.PNG
    if where.kind == "local":
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
    crawl: Crawl, server: MockServer, where: Where
) -> None:
    settings = where.settings({"MEDIAPIPE_DEDUPLICATE": False})
    (one,) = records(await crawl([{"images": [f"{server.url}/img/png"]}], settings))
    second = await crawl([{"images": [f"{server.url}/img/notes.txt"]}], settings)
    (two,) = records(second)
    assert second.stat("mediapipe/deduplicated") == 0
    assert second.stat("mediapipe/stored_bytes") == len(media.PNG)
    assert where.files() == {one["path"]: media.PNG, two["path"]: media.PNG}
    if where.kind == "local":
        assert (where.root / one["path"]).stat().st_ino != (where.root / two["path"]).stat().st_ino  # type: ignore[attr-defined]


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
    where: Where,
    route: str,
    asked: dict[str, str],
    not_modified_type: str,
) -> None:
    versioned = server.versioned[route]
    versioned.not_modified_type = not_modified_type
    url = f"{server.url}{route}"
    (first,) = records(await crawl([{"images": [url]}], where.settings()))
    assert first["status"] == "downloaded"
    entry = where.entry(url)
    assert entry is not None
    assert entry["etag"] == versioned.validators().get("ETag")
    assert entry["last_modified"] == versioned.validators().get("Last-Modified")
    where.age(url, 91)
    before = time.time()

    second = await crawl([{"images": [url]}], where.settings())
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
    assert where.files() == {first["path"]: media.PNG}
    refreshed = where.entry(url)
    assert refreshed is not None
    assert refreshed["stored_at"] >= before

    # Its age started again: the next crawl asks nothing.
    third = await crawl([{"images": [url]}], where.settings())
    assert records(third)[0]["status"] == "uptodate"
    assert len(versioned.conditions) == 2


@pytest_twisted.ensureDeferred
async def test_a_changed_file_answers_200_and_is_stored_anew(
    crawl: Crawl, server: MockServer, where: Where
) -> None:
    versioned = server.versioned["/versioned/both"]
    url = f"{server.url}/versioned/both"
    (_first,) = records(await crawl([{"images": [url]}], where.settings()))
    versioned.change(media.GIF)
    where.age(url, 91)
    second = await crawl([{"images": [url]}], where.settings())
    (again,) = records(second)
    assert versioned.conditions[-1]["If-None-Match"] == '"v1"'
    assert again["status"] == "downloaded"
    assert again["mime"] == "image/gif"
    assert second.stat("mediapipe/revalidated") == 0
    assert where.files()[again["path"]] == media.GIF
    entry = where.entry(url)
    assert entry is not None
    assert entry["etag"] == '"v2"'


@pytest_twisted.ensureDeferred
async def test_without_validators_an_expired_file_is_fetched_plainly(
    crawl: Crawl, server: MockServer, where: Where
) -> None:
    versioned = server.versioned["/versioned/none"]
    url = f"{server.url}/versioned/none"
    await crawl([{"images": [url]}], where.settings())
    where.age(url, 91)
    second = await crawl([{"images": [url]}], where.settings({"MEDIAPIPE_DEDUPLICATE": False}))
    assert versioned.conditions == [{}, {}]
    assert records(second)[0]["status"] == "downloaded"


@pytest_twisted.ensureDeferred
async def test_expires_zero_asks_the_server_every_time(
    crawl: Crawl, server: MockServer, where: Where
) -> None:
    versioned = server.versioned["/versioned/etag"]
    url = f"{server.url}/versioned/etag"
    settings = where.settings({"MEDIAPIPE_EXPIRES": 0})
    await crawl([{"images": [url]}], settings)
    for _ in range(2):
        result = await crawl([{"images": [url]}], settings)
        assert records(result)[0]["status"] == "uptodate"
        assert result.stat("mediapipe/revalidated") == 1
    assert versioned.conditions == [{}, {"If-None-Match": '"v1"'}, {"If-None-Match": '"v1"'}]


@pytest_twisted.ensureDeferred
async def test_an_unasked_304_is_a_failure(crawl: Crawl, server: MockServer, where: Where) -> None:
    url = f"{server.url}/status/304"
    result = await crawl([{"images": [url]}], where.settings())
    (record,) = records(result)
    assert (record["status"], record["reason"]) == ("failed", "http-304")
    assert result.warnings == [f"Media (failed: http-304): {url}"]
    assert where.files() == {}


def _quoted(url: str) -> str:
    from urllib.parse import quote

    return quote(url, safe="")
