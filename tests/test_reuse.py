"""What comes back without a download (contract §6, §8): the crawl's cache and the store's index
keep whether credentials were used, and a stored file is reused only while the current
settings would still accept it. The sniffed type obeys ``MEDIAPIPE_MEDIA_TYPES`` (§4.6)."""

from __future__ import annotations

import base64
import json
import time
from typing import TYPE_CHECKING, Any

import pytest
import pytest_twisted

from tests import media
from tests.mockserver import body, redirect
from tests.storecheck import index_entry, index_keys, leftovers, stored_files

if TYPE_CHECKING:
    from tests.conftest import Crawl
    from tests.mockserver import MockServer

PROFILE = {"headers": {"X-Api-Key": "secret"}}
BIG_JPEG = media.image_bytes("JPEG", (400, 300), "blue")


def record_of(item: dict[str, Any]) -> dict[str, Any]:
    return dict(item["media"][0])


@pytest_twisted.ensureDeferred
async def test_credentials_of_a_redirect_hop_keep_provenance_off_everywhere(
    crawl: Crawl, server: MockServer
) -> None:
    # The source's own host has no profile; its redirect target has one.
    server.httpd.routes["/to-localhost"] = redirect(f"http://localhost:{server.port}/echo")
    source = f"{server.url}/to-localhost"
    settings = {"MEDIAPIPE_HOST_PROFILES": {"localhost": PROFILE}, "CONCURRENT_ITEMS": 1}

    first = await crawl([{"images": [source]}, {"images": [source]}], settings)
    downloaded, cached = (record_of(item) for item in first.items)
    assert downloaded["status"] == "downloaded"
    assert cached["status"] == "downloaded"  # the same record, from the crawl's cache
    assert server.count("/to-localhost") == 1
    assert [item["images"] for item in first.items] == [
        [f"/media/{downloaded['path']}"],
        [f"/media/{downloaded['path']}"],
    ]

    # A later run: reused from the store's index, with no request, and still no provenance.
    server.reset()
    second = await crawl([{"images": [source]}], settings)
    reused = record_of(second.items[0])
    assert (reused["status"], reused["path"]) == ("uptodate", downloaded["path"])
    assert second.items[0]["images"] == [f"/media/{downloaded['path']}"]
    assert server.requested == []
    (key,) = index_keys(crawl.store)
    entry = index_entry(crawl.store, key)
    assert entry is not None
    assert entry["credentials"] == 1


@pytest_twisted.ensureDeferred
async def test_downloads_without_credentials_keep_provenance_when_reused(
    crawl: Crawl, server: MockServer
) -> None:
    source = f"{server.url}/img/png"
    first = await crawl([{"images": [source]}, {"images": [source]}], {"CONCURRENT_ITEMS": 1})
    urls = [item["images"][0] for item in first.items]
    assert urls[0] == urls[1]
    assert urls[0].endswith("?url=" + source.replace(":", "%3A").replace("/", "%2F"))
    second = await crawl([{"images": [source]}])
    assert record_of(second.items[0])["status"] == "uptodate"
    assert second.items[0]["images"] == [urls[0]]


@pytest.mark.parametrize(
    ("route", "payload", "declared", "sniffed"),
    [
        ("/octet-mp4", media.MP4, "application/octet-stream", "video/mp4"),
        ("/untyped-mp4", media.MP4, None, "video/mp4"),
        ("/wav-as-image", media.WAV, "image/png", "audio/wav"),
    ],
    ids=["octet-stream", "no-type", "declared-image"],
)
@pytest_twisted.ensureDeferred
async def test_sniffed_type_outside_media_types_is_refused(
    crawl: Crawl,
    server: MockServer,
    route: str,
    payload: bytes,
    declared: str | None,
    sniffed: str,
) -> None:
    server.httpd.routes[route] = body(payload, declared)
    result = await crawl(
        [{"images": [f"{server.url}{route}", f"{server.url}/img/png"]}],
        {"MEDIAPIPE_MEDIA_TYPES": ["image/*"]},
    )
    refused, png = result.items[0]["media"]
    assert (refused["status"], refused["reason"]) == ("failed", "content-type"), refused
    assert png["status"] == "downloaded"
    assert stored_files(crawl.store) == {png["path"]: media.PNG}
    assert leftovers(crawl.store) == []
    assert result.warnings == [
        f"Media (failed: content-type): {server.url}{route} "
        f"(the body is {sniffed}, not in MEDIAPIPE_MEDIA_TYPES; declared {declared or 'no type'})"
    ]
    assert result.stat("mediapipe/failed/content-type") == 1


@pytest_twisted.ensureDeferred
async def test_sniffed_type_of_a_data_uri_obeys_media_types(crawl: Crawl) -> None:
    source = "data:application/octet-stream;base64," + base64.b64encode(media.MP4).decode()
    result = await crawl([{"images": [source]}], {"MEDIAPIPE_MEDIA_TYPES": ["image/*"]})
    record = record_of(result.items[0])
    assert (record["status"], record["reason"]) == ("failed", "content-type")
    assert stored_files(crawl.store) == {}
    assert leftovers(crawl.store) == []


@pytest_twisted.ensureDeferred
async def test_reuse_obeys_the_current_limits(crawl: Crawl, server: MockServer) -> None:
    server.httpd.routes["/big.jpg"] = body(BIG_JPEG, "image/jpeg")
    server.httpd.routes["/clip.mp4"] = body(media.MP4, "video/mp4")
    sources = [f"{server.url}/big.jpg", f"{server.url}/clip.mp4", f"{server.url}/img/png"]
    first = await crawl([{"images": sources}])
    assert [r["status"] for r in first.items[0]["media"]] == ["downloaded"] * 3
    kept = stored_files(crawl.store)

    server.reset()
    limits = {"MEDIAPIPE_MAX_SIZE": 1000, "MEDIAPIPE_MEDIA_TYPES": ["image/png"]}
    second = await crawl([{"images": sources}], limits)
    jpeg, mp4, png = second.items[0]["media"]
    # Fetched again, and refused under today's rules; the PNG still fits them and is reused.
    assert (jpeg["status"], jpeg["reason"]) == ("failed", "content-type")
    assert (mp4["status"], mp4["reason"]) == ("failed", "content-type")
    assert png["status"] == "uptodate"
    assert server.count("/big.jpg") == 1
    assert server.count("/clip.mp4") == 1
    assert server.count("/img/png") == 0
    # Nothing stored earlier is damaged or removed.
    assert stored_files(crawl.store) == kept

    server.reset()
    third = await crawl([{"images": sources[:1]}], {"MEDIAPIPE_MAX_SIZE": 1000})
    assert (record_of(third.items[0])["status"], record_of(third.items[0])["reason"]) == (
        "failed",
        "too-large",
    )
    assert server.count("/big.jpg") == 1


@pytest_twisted.ensureDeferred
async def test_data_uri_reuse_obeys_the_current_limits(crawl: Crawl) -> None:
    source = "data:image/jpeg;base64," + base64.b64encode(BIG_JPEG).decode()
    first = await crawl([{"images": [source]}])
    assert record_of(first.items[0])["status"] == "data"
    second = await crawl([{"images": [source]}], {"MEDIAPIPE_MAX_SIZE": 1000})
    assert (record_of(second.items[0])["status"], record_of(second.items[0])["reason"]) == (
        "failed",
        "too-large",
    )


@pytest_twisted.ensureDeferred
async def test_store_of_version_0_1_is_reused_with_no_request(
    crawl: Crawl, server: MockServer
) -> None:
    """0.1 kept one JSON file per source under .mediapipe/index/; 0.2 carries them into its
    database at start and reuses the files as they are."""
    png, jpeg = f"{server.url}/img/png", f"{server.url}/img/jpeg"
    first = await crawl([{"images": [png, jpeg]}])
    records = first.items[0]["media"]
    assert [r["status"] for r in records] == ["downloaded", "downloaded"]
    files = stored_files(crawl.store)
    meta = crawl.store / ".mediapipe"
    for name in ("index.sqlite3", "index.sqlite3-wal", "index.sqlite3-shm"):
        (meta / name).unlink(missing_ok=True)
    for record in records:
        key = record["path"].rsplit("_", 1)[1].split(".")[0]
        entry = meta / "index" / key[:2] / f"{key}.json"
        entry.parent.mkdir(parents=True, exist_ok=True)
        fields = ("path", "size", "sha256", "mime", "width", "height")
        entry.write_text(
            json.dumps({**{f: record[f] for f in fields}, "stored_at": time.time() - 60})
        )
    server.reset()

    second = await crawl([{"images": [png, jpeg]}])

    assert server.requested == []
    reused = second.items[0]["media"]
    assert [r["status"] for r in reused] == ["uptodate", "uptodate"]
    assert [r["path"] for r in reused] == [r["path"] for r in records]
    assert [r["sha256"] for r in reused] == [r["sha256"] for r in records]
    assert stored_files(crawl.store) == files
    assert not (meta / "index").exists()
    for record in records:
        key = record["path"].rsplit("_", 1)[1].split(".")[0]
        entry = index_entry(crawl.store, key)
        assert entry is not None
        assert (entry["path"], entry["credentials"]) == (record["path"], 1)
