"""The contract's crawl-level rules, each test body run against every store: a local folder and
an S3 prefix (SeaweedFS on 127.0.0.1). Downloads (§4, §5, §6), reuse and expiry (§8), failures
that leave nothing behind (§7.4, §9), data: URIs (§3.3), copy_media's target (§1, §7.3)."""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from collections import Counter
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
import pytest_twisted
from scrapy.utils.defer import deferred_from_coro

from mediapipe import copy_media
from mediapipe.naming import build_name, make_label
from tests import media
from tests.mockserver import BIG_BODY, LAST_MODIFIED_EPOCH, body

if TYPE_CHECKING:
    from tests.conftest import Crawl, CrawlResult
    from tests.mockserver import MockServer
    from tests.storeviews import StoreView

ALLOW = {"MEDIAPIPE_ALLOW_PRIVATE_NETWORKS": True}
SPEC_TAGS = ["flux", None, "1:1"]
SPEC_ALT = "A red square: ÄÖÜ 猫 / test?"
SPEC_LABEL = "flux+1_1+A_red_square_ÄÖÜ_猫_test"

# route: (bytes served, stored type, extension, width and height)
DOWNLOADS: dict[str, tuple[bytes, str, str, tuple[int, int] | None]] = {
    "/img/png": (media.PNG, "image/png", ".png", (8, 6)),
    "/img/jpeg": (media.JPEG, "image/jpeg", ".jpg", (10, 7)),
    "/img/gif": (media.GIF, "image/gif", ".gif", (4, 4)),
    "/img/webp": (media.WEBP, "image/webp", ".webp", (5, 3)),
    "/audio/wav": (media.WAV, "audio/wav", ".wav", None),
    "/video/mp4": (media.MP4, "video/mp4", ".mp4", None),
    "/img/svg": (media.SVG, "image/svg+xml", ".svg", None),
    # A declared type the sniffer cannot check: kept, typed from it, with no extension.
    "/audio/unknown-bytes": (media.NOISE, "audio/x-unheard-of", "", None),
    # Declared otherwise: the stored type is the sniffed one.
    "/img/octet-mp4": (media.MP4, "video/mp4", ".mp4", None),
    "/img/jpeg-as-png": (media.JPEG, "image/jpeg", ".jpg", (10, 7)),
}


def h16(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


def name_for(source: str, epoch: int, ext: str, label: str = "") -> str:
    """The file name contract §5 promises."""
    return f"{epoch}_{label}_{h16(source)}{ext}" if label else f"{epoch}_{h16(source)}{ext}"


def url_for(name: str, source: str | None = None, prefix: str = "/media/") -> str:
    """The returned URL of contract §6, with ``?url=`` provenance when ``source`` is given."""
    url = prefix + quote(name, safe="-._~+/")
    return url if source is None else f"{url}?url={quote(source, safe='')}"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def records(result: CrawlResult, index: int = 0) -> list[dict[str, Any]]:
    return [dict(record) for record in result.items[index]["media"]]


def data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def assert_stored_as(store: StoreView, name: str, data: bytes, mime: str) -> None:
    """The store holds ``name`` with exactly ``data``; an S3 object carries the sniffed type."""
    assert store.files()[name] == data
    if store.kind == "s3":
        assert store.content_type(name) == mime


def assert_failure_lines(result: CrawlResult, failures: dict[str, str], store: StoreView) -> None:
    """One WARNING line per failed source, naming it and its reason, and nothing of the store's
    inner workings (temporary file, bucket)."""
    assert len(result.warnings) == len(failures), result.warnings
    for source, reason in failures.items():
        head = f"Media (failed: {reason}): {source}"
        lines = [line for line in result.warnings if line == head or line.startswith(head + " (")]
        assert len(lines) == 1, (source, result.warnings)
    for line in result.warnings:
        assert ".part" not in line
        assert store.uri not in line


# -- downloads (§4, §5, §6) ---------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_downloads_are_stored_with_their_bytes_type_name_and_url(
    crawl: Crawl, server: MockServer, store: StoreView
) -> None:
    sources = [f"{server.url}{route}" for route in DOWNLOADS]
    item = {"images": list(sources), "tags": SPEC_TAGS, "alt": SPEC_ALT}
    # Some routes serve the same bytes; storing them once is test_dedup_revalidation's.
    result = await crawl([item], store.settings({"MEDIAPIPE_DEDUPLICATE": False}))

    expected_files: dict[str, bytes] = {}
    expected_urls: list[str] = []
    got = records(result)
    for source, record, (data, mime, ext, size) in zip(
        sources, got, DOWNLOADS.values(), strict=True
    ):
        name = name_for(source, LAST_MODIFIED_EPOCH, ext, SPEC_LABEL)
        assert name == build_name(
            LAST_MODIFIED_EPOCH, make_label(SPEC_TAGS, SPEC_ALT), h16(source), ext
        )
        width, height = size or (None, None)
        assert record == {
            "source": source,
            "url": url_for(name, source),
            "path": name,
            "status": "downloaded",
            "reason": None,
            "mime": mime,
            "size": len(data),
            "sha256": sha(data),
            "width": width,
            "height": height,
        }
        expected_files[name] = data
        expected_urls.append(url_for(name, source))
        assert_stored_as(store, name, data, mime)
        entry = store.index_entry(h16(source))
        assert entry is not None
        assert {k: entry[k] for k in ("path", "size", "sha256", "mime", "credentials")} == {
            "path": name,
            "size": len(data),
            "sha256": sha(data),
            "mime": mime,
            "credentials": False,
        }
    assert result.items[0]["images"] == expected_urls
    assert store.files() == expected_files
    assert store.index_keys() == sorted(h16(source) for source in sources)
    assert store.leftovers() == []
    assert store.neighbours() == {}
    assert result.warnings == []
    assert result.stat("mediapipe/status/downloaded") == len(sources)
    assert result.stat("mediapipe/stored_files") == len(sources)
    assert result.stat("mediapipe/stored_bytes") == sum(len(d[0]) for d in DOWNLOADS.values())
    assert server.requested == list(DOWNLOADS) or sorted(server.requested) == sorted(DOWNLOADS)


@pytest_twisted.ensureDeferred
async def test_an_absolute_url_prefix_gives_absolute_urls(
    crawl: Crawl, server: MockServer, store: StoreView
) -> None:
    cdn = "https://cdn.example.com/media/"
    source = f"{server.url}/img/png"
    inline = data_uri("image/gif", media.GIF)
    settings = store.settings({"MEDIAPIPE_URL_PREFIX": cdn})
    first = await crawl([{"images": [source, inline], "alt": "é à"}], settings)
    png, gif = records(first)
    name = name_for(source, LAST_MODIFIED_EPOCH, ".png", "é_à")
    assert png["path"] == name
    assert gif["path"] == name_for(inline, int(gif["path"].split("_")[0]), ".gif", "é_à")
    expected = [url_for(name, source, prefix=cdn), url_for(gif["path"], prefix=cdn)]
    assert first.items[0]["images"] == expected
    assert [png["url"], gif["url"]] == expected
    assert store.files() == {name: media.PNG, gif["path"]: media.GIF}

    # Reused, the URLs are built the same way.
    server.reset()
    second = await crawl([{"images": [source, inline]}], settings)
    assert [r["status"] for r in records(second)] == ["uptodate", "data"]
    assert second.items[0]["images"] == expected
    assert server.requested == []


# -- reuse and expiry (§8) ----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_second_crawl_reuses_every_file_with_no_request(
    crawl: Crawl, server: MockServer, store: StoreView
) -> None:
    sources = [
        f"{server.url}/img/png",
        f"{server.url}/img/jpeg",
        f"{server.url}/video/mp4",
        data_uri("image/png", media.PNG),
    ]
    # The PNG and the data: URI hold the same bytes: in a bucket, deduplication would keep one
    # object for both or two, as their commits happen to order. Reuse is what is tested here.
    settings = store.settings({"MEDIAPIPE_DEDUPLICATE": False})
    first = await crawl([{"images": list(sources)}], settings)
    before = records(first)
    assert [r["status"] for r in before] == ["downloaded", "downloaded", "downloaded", "data"]
    files = store.files()
    assert sorted(files.values()) == sorted([media.PNG, media.JPEG, media.MP4, media.PNG])
    entries = {key: store.index_entry(key) for key in store.index_keys()}
    assert sorted(entries) == sorted(h16(source) for source in sources)

    server.reset()
    # Other alt text: the name is not rebuilt, the stored file is found by its source.
    second = await crawl([{"images": list(sources), "alt": "another"}], settings)
    after = records(second)
    assert server.requested == []
    assert [r["status"] for r in after] == ["uptodate", "uptodate", "uptodate", "data"]
    assert second.items[0]["images"] == first.items[0]["images"]
    for old, new in zip(before, after, strict=True):
        assert {**new, "status": old["status"]} == old
    assert store.files() == files
    assert {key: store.index_entry(key) for key in store.index_keys()} == entries
    assert second.stat("mediapipe/status/uptodate") == 3
    assert second.stat("mediapipe/status/data") == 1
    assert second.stat("mediapipe/status/downloaded") == 0
    assert second.stat("mediapipe/stored_files") == 0
    assert second.warnings == []
    assert store.leftovers() == []


@pytest_twisted.ensureDeferred
async def test_expired_or_removed_files_are_downloaded_again(
    crawl: Crawl, server: MockServer, store: StoreView
) -> None:
    expired, removed, fresh = (f"{server.url}{p}" for p in ("/img/png", "/img/jpeg", "/img/gif"))
    sources = [expired, removed, fresh]
    first = await crawl([{"images": sources}], store.settings())
    old = records(first)
    entry = store.index_entry(h16(expired))
    assert entry is not None
    long_ago = entry["stored_at"] - 91 * 86400  # MEDIAPIPE_EXPIRES defaults to 90 days
    store.set_index_field(h16(expired), "stored_at", long_ago)
    store.remove(old[1]["path"])

    server.reset()
    started = time.time()
    second = await crawl([{"images": sources}], store.settings())
    new = records(second)
    assert [r["status"] for r in new] == ["downloaded", "downloaded", "uptodate"]
    assert sorted(server.requested) == ["/img/jpeg", "/img/png"]
    assert [r["path"] for r in new] == [r["path"] for r in old]
    assert second.items[0]["images"] == first.items[0]["images"]
    assert store.files() == {
        old[0]["path"]: media.PNG,
        old[1]["path"]: media.JPEG,
        old[2]["path"]: media.GIF,
    }
    renewed = store.index_entry(h16(expired))
    assert renewed is not None
    assert renewed["stored_at"] >= started
    assert second.stat("mediapipe/status/downloaded") == 2
    assert second.stat("mediapipe/status/uptodate") == 1

    # MEDIAPIPE_EXPIRES = 0 reuses nothing.
    server.reset()
    third = await crawl([{"images": [fresh]}], store.settings({"MEDIAPIPE_EXPIRES": 0}))
    assert records(third)[0]["status"] == "downloaded"
    assert server.requested == ["/img/gif"]
    assert store.files()[old[2]["path"]] == media.GIF
    assert store.leftovers() == []


@pytest_twisted.ensureDeferred
async def test_reuse_obeys_the_current_limits(
    crawl: Crawl, server: MockServer, store: StoreView
) -> None:
    sources = [f"{server.url}/img/jpeg", f"{server.url}/video/mp4", f"{server.url}/img/png"]
    first = await crawl([{"images": sources}], store.settings())
    assert [r["status"] for r in records(first)] == ["downloaded"] * 3
    files = store.files()
    entries = {key: store.index_entry(key) for key in store.index_keys()}

    server.reset()
    limits = {"MEDIAPIPE_MAX_SIZE": len(media.PNG), "MEDIAPIPE_MEDIA_TYPES": ["image/*"]}
    second = await crawl([{"images": sources}], store.settings(limits))
    jpeg, mp4, png = records(second)
    # Stored, but no longer acceptable: fetched again, and refused under today's rules.
    assert (jpeg["status"], jpeg["reason"]) == ("failed", "too-large")
    assert (mp4["status"], mp4["reason"]) == ("failed", "content-type")
    assert png["status"] == "uptodate"
    assert sorted(server.requested) == ["/img/jpeg", "/video/mp4"]
    assert_failure_lines(second, {sources[0]: "too-large", sources[1]: "content-type"}, store)
    # What was stored before is neither damaged nor forgotten.
    assert store.files() == files
    assert {key: store.index_entry(key) for key in store.index_keys()} == entries
    assert store.leftovers() == []


@pytest_twisted.ensureDeferred
async def test_credentials_of_a_download_are_kept_with_the_stored_file(
    crawl: Crawl, server: MockServer, store: StoreView
) -> None:
    source = f"{server.url}/echo"
    profiles = {"MEDIAPIPE_HOST_PROFILES": {"127.0.0.1": {"headers": {"X-Api-Key": "secret"}}}}
    first = await crawl([{"images": [source]}], store.settings(profiles))
    (record,) = records(first)
    assert record["status"] == "downloaded"
    assert server.seen_headers[0]["X-Api-Key"] == "secret"
    assert first.items[0]["images"] == [url_for(record["path"])]  # no provenance
    entry = store.index_entry(h16(source))
    assert entry is not None
    assert entry["credentials"] is True

    # Without the profile now: the index alone says credentials were used.
    server.reset()
    second = await crawl([{"images": [source]}], store.settings())
    assert records(second) == [{**record, "status": "uptodate"}]
    assert second.items[0]["images"] == [url_for(record["path"])]
    assert server.requested == []


@pytest_twisted.ensureDeferred
async def test_a_changed_file_replaces_the_stored_copy_under_its_name(
    crawl: Crawl, server: MockServer, store: StoreView
) -> None:
    source = f"{server.url}/img/png"
    first = await crawl([{"images": [source]}], store.settings())
    (old,) = records(first)
    changed = media.image_bytes("PNG", (3, 2), "blue")
    server.httpd.routes["/img/png"] = body(changed, "image/png")  # same Last-Modified: same name

    second = await crawl([{"images": [source]}], store.settings({"MEDIAPIPE_EXPIRES": 0}))
    (new,) = records(second)
    assert new == {
        **old,
        "size": len(changed),
        "sha256": sha(changed),
        "width": 3,
        "height": 2,
    }
    assert store.files() == {old["path"]: changed}
    assert_stored_as(store, old["path"], changed, "image/png")
    entry = store.index_entry(h16(source))
    assert entry is not None
    assert (entry["path"], entry["size"], entry["sha256"]) == (
        old["path"],
        len(changed),
        sha(changed),
    )
    assert store.leftovers() == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("size", 1),
        ("path", "../outside.png"),
        ("path", ".mediapipe/index/x.png"),
        ("stored_at", "yesterday"),
    ],
    ids=["wrong-size", "path-out-of-the-store", "path-in-the-bookkeeping", "stored-at-not-a-time"],
)
@pytest_twisted.ensureDeferred
async def test_an_index_entry_that_cannot_be_trusted_is_downloaded_again(
    crawl: Crawl, server: MockServer, store: StoreView, field: str, value: Any
) -> None:
    """The index only caches what the store holds: an entry that does not match a stored file
    counts as no entry, as a damaged store would leave it."""
    source = f"{server.url}/img/png"
    first = await crawl([{"images": [source]}], store.settings())
    (good,) = records(first)
    entry = store.index_entry(h16(source))
    store.set_index_field(h16(source), field, value)

    server.reset()
    second = await crawl([{"images": [source]}], store.settings())
    assert records(second) == [good]
    assert second.items[0]["images"] == first.items[0]["images"]
    assert server.requested == ["/img/png"]
    assert second.warnings == []
    assert store.files() == {good["path"]: media.PNG}
    assert store.neighbours() == {}
    renewed = store.index_entry(h16(source))
    assert renewed is not None
    assert entry is not None
    assert {**renewed, "stored_at": entry["stored_at"]} == entry
    assert store.leftovers() == []


# -- failures (§7.4, §9) ------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_failed_sources_leave_nothing_in_the_store(
    crawl: Crawl, server: MockServer, store: StoreView
) -> None:
    failures = {
        f"{server.url}/status/404": "http-404",
        f"{server.url}/img/page": "content-type",
        f"{server.url}/img/html-as-png": "content-mismatch",
        f"{server.url}/img/noise-as-png": "unknown-format",
        f"{server.url}/img/empty": "empty",
        f"{server.url}/big/declared": "too-large",
        f"{server.url}/big/chunked": "too-large",  # cut once written past the limit
        data_uri("image/png", media.HTML): "content-mismatch",
    }
    good = f"{server.url}/img/png"
    settings = store.settings({"MEDIAPIPE_MAX_SIZE": BIG_BODY // 4})
    result = await crawl([{"images": [*failures, good]}], settings)

    got = records(result)
    for source, record in zip(failures, got[:-1], strict=True):
        assert record == {
            "source": source,
            "url": source,
            "path": None,
            "status": "failed",
            "reason": failures[source],
            "mime": None,
            "size": None,
            "sha256": None,
            "width": None,
            "height": None,
        }
    assert result.items[0]["images"][:-1] == list(failures)
    png = got[-1]
    assert png["status"] == "downloaded"
    assert result.items[0]["images"][-1] == url_for(png["path"], good)
    assert store.files() == {png["path"]: media.PNG}
    assert store.index_keys() == [h16(good)]
    assert store.leftovers() == []
    assert store.neighbours() == {}
    assert_failure_lines(result, failures, store)
    assert result.stat("mediapipe/status/failed") == len(failures)
    for reason, count in Counter(failures.values()).items():
        assert result.stat(f"mediapipe/failed/{reason}") == count
    assert result.stat("mediapipe/stored_files") == 1


@pytest.mark.parametrize(
    ("replacement", "settings", "reason"),
    [
        ("/img/html-as-png", {}, "content-mismatch"),
        ("/status/500", {}, "http-500"),
        ("/big/chunked", {"MEDIAPIPE_MAX_SIZE": BIG_BODY // 4}, "too-large"),
    ],
    ids=["page-as-image", "server-error", "too-large"],
)
@pytest_twisted.ensureDeferred
async def test_a_failed_redownload_keeps_the_good_copy(
    crawl: Crawl,
    server: MockServer,
    store: StoreView,
    replacement: str,
    settings: dict[str, Any],
    reason: str,
) -> None:
    source = f"{server.url}/img/png"
    first = await crawl([{"images": [source]}], store.settings())
    (good,) = records(first)
    entry = store.index_entry(h16(source))

    server.httpd.routes["/img/png"] = server.httpd.routes[replacement]
    server.reset()
    second = await crawl(
        [{"images": [source]}], store.settings({"MEDIAPIPE_EXPIRES": 0, **settings})
    )
    (failed,) = records(second)
    assert (failed["status"], failed["reason"], failed["url"]) == ("failed", reason, source)
    assert server.requested == ["/img/png"]
    assert_failure_lines(second, {source: reason}, store)
    assert second.stat(f"mediapipe/failed/{reason}") == 1
    assert store.files() == {good["path"]: media.PNG}
    assert_stored_as(store, good["path"], media.PNG, "image/png")
    assert store.index_entry(h16(source)) == entry
    assert store.leftovers() == []

    # The good copy still serves a later crawl, with no request.
    server.reset()
    third = await crawl([{"images": [source]}], store.settings())
    assert records(third) == [{**good, "status": "uptodate"}]
    assert server.requested == []


# -- data: URIs (§3.3) --------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_data_uris_are_stored_with_their_exact_bytes(crawl: Crawl, store: StoreView) -> None:
    uris = {
        data_uri("image/png", media.PNG): (media.PNG, "image/png", ".png"),
        data_uri("image/jpeg", media.JPEG): (media.JPEG, "image/jpeg", ".jpg"),
        # Declared as octet-stream: named and typed from the sniffed bytes.
        data_uri("application/octet-stream", media.WAV): (media.WAV, "audio/wav", ".wav"),
        "data:image/gif," + quote(media.GIF, safe=""): (media.GIF, "image/gif", ".gif"),
    }
    started = int(time.time())
    result = await crawl([{"images": list(uris), "tags": ["inline"]}], store.settings())
    ended = int(time.time())
    got = records(result)
    names = []
    for (source, (data, mime, ext)), record in zip(uris.items(), got, strict=True):
        epoch = int(record["path"].split("_", 1)[0])
        assert started <= epoch <= ended
        name = name_for(source, epoch, ext, "inline")
        assert (record["status"], record["path"], record["url"]) == ("data", name, url_for(name))
        assert (record["mime"], record["size"], record["sha256"]) == (mime, len(data), sha(data))
        assert_stored_as(store, name, data, mime)
        names.append(name)
    assert result.items[0]["images"] == [url_for(name) for name in names]
    assert store.files() == {
        name: data for name, (data, _, _) in zip(names, uris.values(), strict=True)
    }
    assert store.index_keys() == sorted(h16(source) for source in uris)
    assert result.stat("mediapipe/status/data") == len(uris)
    assert result.stat("mediapipe/stored_files") == len(uris)
    assert result.warnings == []
    assert store.leftovers() == []


# -- copy_media with a target (§1, §7.3) --------------------------------------------------------


async def copy(store: StoreView, source: str, **options: Any) -> list[Any]:
    call = copy_media(
        [source],
        return_target=True,
        media_dir=store.uri,
        settings=store.settings(ALLOW),
        **options,
    )
    result: list[Any] = await deferred_from_coro(call)
    return result


@pytest_twisted.ensureDeferred
async def test_copy_media_stores_at_the_given_target(server: MockServer, store: StoreView) -> None:
    source = f"{server.url}/img/last-modified"
    jpeg = f"{server.url}/img/jpeg"
    assert await copy(store, source, target="sub/one.png") == [
        (url_for("sub/one.png", source), "sub/one.png")
    ]
    plain = name_for(jpeg, LAST_MODIFIED_EPOCH, ".jpg")
    assert await copy(store, jpeg) == [(url_for(plain, jpeg), plain)]
    # Already stored under its own name: the target is still written.
    assert await copy(store, jpeg, target="two.jpg") == [(url_for("two.jpg", jpeg), "two.jpg")]
    assert store.files() == {"sub/one.png": media.PNG, plain: media.JPEG, "two.jpg": media.JPEG}
    assert_stored_as(store, "sub/one.png", media.PNG, "image/png")
    assert_stored_as(store, "two.jpg", media.JPEG, "image/jpeg")
    assert server.count("/img/last-modified") == 1
    assert server.count("/img/jpeg") == 2
    assert store.leftovers() == []
    assert store.neighbours() == {}


@pytest.mark.parametrize("target", ["../x.png", "sub/../../x.png", ".mediapipe/index/x.png"])
@pytest_twisted.ensureDeferred
async def test_a_target_that_would_leave_the_store_is_refused(
    server: MockServer, store: StoreView, caplog: pytest.LogCaptureFixture, target: str
) -> None:
    source = f"{server.url}/img/png"
    with caplog.at_level(logging.WARNING, logger="mediapipe"):
        assert await copy(store, source, target=target) == [(source, None)]
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and r.name.startswith("mediapipe")
    ]
    assert warnings == [
        f"Media (failed: storage): {source} (file name {target!r} would leave the media store)"
    ]
    assert store.files() == {}
    assert store.index_keys() == []
    assert store.leftovers() == []
    assert store.neighbours() == {}
