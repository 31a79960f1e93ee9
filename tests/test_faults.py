"""Fault injection, one fault per test (contract §4, §7, §9): each failure gets its exact reason,
keeps its source, leaves nothing in the store, logs one WARNING, counts one stat, and never
affects the good sources of the same item."""

from __future__ import annotations

import base64
import hashlib
import tracemalloc
import unicodedata
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import pytest
import pytest_twisted

from tests import media
from tests.faultserver import (
    GZIP_BOMB_INFLATED,
    connection_reset,
    gzip_bomb,
    gzip_bomb_body,
    image_bomb,
    redirect_loop,
    redirect_to_localhost,
    stall,
)
from tests.mockserver import LAST_MODIFIED_EPOCH, body
from tests.storecheck import index_entry, leftovers, stored_files

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import Crawl, CrawlResult
    from tests.mockserver import MockServer

# Far below the 1 GiB a gzip bomb inflates to, and below the 10 MB size limit of the tests.
MEMORY_LIMIT = 10_000_000
BIG_LIMIT = 32 * 1024  # below /big/* (64 KiB), far above the good files
DATA_URI_CHARS = 50_000_000


def h16(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def good_sources(server: MockServer) -> dict[str, bytes]:
    return {f"{server.url}/img/png": media.PNG, f"{server.url}/img/gif": media.GIF}


def good_data_uris() -> dict[str, bytes]:
    return {
        "data:image/png;base64," + base64.b64encode(media.PNG).decode(): media.PNG,
        "data:image/gif;base64," + base64.b64encode(media.GIF).decode(): media.GIF,
    }


async def crawl_with(
    crawl: Crawl,
    source: str,
    goods: dict[str, bytes],
    settings: dict[str, Any] | None = None,
    **fields: Any,
) -> CrawlResult:
    """One item: the first good source, the one under test, the second good source."""
    first, second = goods
    result = await crawl([{"images": [first, source, second], **fields}], settings)
    assert len(result.items) == 1
    item = result.items[0]
    assert len(item["media"]) == 3
    assert [record["source"] for record in item["media"]] == [first, source, second]
    return result


def assert_goods_stored(result: CrawlResult, goods: dict[str, bytes]) -> set[str]:
    """Every good source of the item is stored with its exact bytes; returns their paths."""
    item = result.items[0]
    paths = set()
    for record in item["media"]:
        expected = goods.get(record["source"])
        if expected is None:
            continue
        assert record["status"] in ("downloaded", "data"), record
        assert record["reason"] is None
        assert record["sha256"] == sha(expected)
        assert record["size"] == len(expected)
        assert (result.store / record["path"]).read_bytes() == expected
        assert item["images"][item["media"].index(record)] == record["url"]
        paths.add(record["path"])
    assert len(paths) == len(goods)
    return paths


def assert_failed(
    result: CrawlResult, source: str, reason: str, goods: dict[str, bytes]
) -> dict[str, Any]:
    """The whole contract of one failed source (contract §9)."""
    item = result.items[0]
    record = item["media"][1]
    assert record["source"] == source
    assert (record["status"], record["reason"]) == ("failed", reason), record
    assert record["path"] is None
    assert record["url"] == source
    assert item["images"][1] == source
    good_paths = assert_goods_stored(result, goods)
    # Nothing of the failed source under any name: only the good files, no temporary file, no
    # index entry.
    assert set(stored_files(result.store)) == good_paths
    assert leftovers(result.store) == []
    assert index_entry(result.store, h16(source)) is None
    naming = [line for line in result.warnings if source[:200] in line]
    assert len(naming) == 1, result.warnings
    assert f"failed: {reason}" in naming[0]
    assert len(result.warnings) == 1, result.warnings
    assert result.stat(f"mediapipe/failed/{reason}") == 1
    assert result.stat("mediapipe/status/failed") == 1
    return dict(record)


def assert_stored(result: CrawlResult, source: str, expected: bytes, status: str) -> str:
    """The source under test was stored with its exact bytes; returns its file name."""
    item = result.items[0]
    record = item["media"][1]
    assert record["source"] == source
    assert (record["status"], record["reason"]) == (status, None), record
    assert record["sha256"] == sha(expected)
    assert (result.store / record["path"]).read_bytes() == expected
    assert item["images"][1] == record["url"]
    assert result.warnings == []
    assert leftovers(result.store) == []
    return str(record["path"])


async def peak_memory(crawl: Crawl, tmp_path: Path, server: MockServer, run: Any) -> Any:
    """Peak traced memory of ``run()``, after a warm-up crawl into another store."""
    await crawl(
        [{"images": [f"{server.url}/img/jpeg"]}], {"MEDIAPIPE_STORE": str(tmp_path / "warm")}
    )
    tracemalloc.start()
    try:
        result = await run()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, result


# -- the connection breaks ----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_truncated_body(crawl: Crawl, server: MockServer) -> None:
    source = f"{server.url}/truncated"
    goods = good_sources(server)
    result = await crawl_with(crawl, source, goods)
    assert_failed(result, source, "truncated", goods)


@pytest_twisted.ensureDeferred
async def test_connection_reset_mid_body(crawl: Crawl, server: MockServer) -> None:
    payload = media.PNG + bytes(8192 - len(media.PNG))
    server.httpd.routes["/fault/reset"] = connection_reset(payload, 64 * 1024)
    source = f"{server.url}/fault/reset"
    goods = good_sources(server)
    result = await crawl_with(crawl, source, goods)
    # A reset after part of a declared body is a body that ended early.
    assert_failed(result, source, "truncated", goods)
    assert server.count("/fault/reset") == 1


@pytest_twisted.ensureDeferred
async def test_stall_past_timeout(crawl: Crawl, server: MockServer) -> None:
    server.httpd.routes["/fault/stall"] = stall(3.0)
    source = f"{server.url}/fault/stall"
    goods = good_sources(server)
    result = await crawl_with(crawl, source, goods, {"DOWNLOAD_TIMEOUT": 1})
    assert_failed(result, source, "timeout", goods)


# -- redirects and the address rule (contract §7.1) ------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_redirect_loop(crawl: Crawl, server: MockServer) -> None:
    server.httpd.routes["/loop"] = redirect_loop("/loop")
    source = f"{server.url}/loop"
    goods = good_sources(server)
    # Retries on: a redirect loop is the server's answer, not a passing network error.
    result = await crawl_with(crawl, source, goods, {"MEDIAPIPE_RETRY_TIMES": 2})
    # Scrapy's RedirectMiddleware follows REDIRECT_MAX_TIMES (20) hops, then gives up: the
    # final answer was a 302.
    assert_failed(result, source, "http-302", goods)
    assert "max redirections reached" in result.warnings[0]
    assert server.count("/loop") == 21
    assert result.stat("mediapipe/retry/count") == 0


@pytest_twisted.ensureDeferred
async def test_redirect_to_localhost_is_refused(crawl: Crawl, server: MockServer) -> None:
    server.httpd.routes["/fault/to-localhost"] = redirect_to_localhost("/fault/localhost-target")
    server.httpd.routes["/fault/localhost-target"] = body(media.PNG, "image/png")
    source = f"{server.url}/fault/to-localhost"
    goods = good_sources(server)
    settings = {
        "MEDIAPIPE_ALLOW_PRIVATE_NETWORKS": False,
        "MEDIAPIPE_ALLOWED_HOSTS": ["127.0.0.1"],
    }
    result = await crawl_with(crawl, source, goods, settings)
    assert_failed(result, source, "unsafe-url", goods)
    assert server.count("/fault/to-localhost") == 1
    assert server.count("/fault/localhost-target") == 0


@pytest_twisted.ensureDeferred
async def test_localhost_source_is_refused_on_its_resolved_address(
    crawl: Crawl, server: MockServer
) -> None:
    server.reset()
    source = f"http://localhost:{server.port}/img/png?direct"
    goods = good_data_uris()
    result = await crawl_with(crawl, source, goods, {"MEDIAPIPE_ALLOW_PRIVATE_NETWORKS": False})
    assert_failed(result, source, "unsafe-url", goods)
    assert server.requested == []


@pytest_twisted.ensureDeferred
async def test_loopback_range_source_is_refused(crawl: Crawl, server: MockServer) -> None:
    server.reset()
    source = f"http://127.0.0.2:{server.port}/img/png"
    goods = good_data_uris()
    result = await crawl_with(crawl, source, goods, {"MEDIAPIPE_ALLOW_PRIVATE_NETWORKS": False})
    assert_failed(result, source, "unsafe-url", goods)
    assert server.requested == []


# -- bombs -------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_gzip_bomb(crawl: Crawl, server: MockServer, tmp_path: Path) -> None:
    wire = gzip_bomb_body()  # built once per session, before memory is measured
    assert len(wire) < 2_000_000
    server.httpd.routes["/fault/gzip-bomb"] = gzip_bomb()
    source = f"{server.url}/fault/gzip-bomb"
    goods = good_sources(server)

    async def run() -> CrawlResult:
        return await crawl_with(crawl, source, goods, {"MEDIAPIPE_MAX_SIZE": 10_000_000})

    peak, result = await peak_memory(crawl, tmp_path, server, run)
    assert_failed(result, source, "too-large", goods)
    assert peak < MEMORY_LIMIT, f"peak {peak} bytes for a body of {GZIP_BOMB_INFLATED} bytes"


@pytest_twisted.ensureDeferred
async def test_image_bomb(crawl: Crawl, server: MockServer, tmp_path: Path) -> None:
    server.httpd.routes["/fault/image-bomb"] = image_bomb()
    source = f"{server.url}/fault/image-bomb"
    goods = good_sources(server)

    async def run() -> CrawlResult:
        return await crawl_with(crawl, source, goods)

    peak, result = await peak_memory(crawl, tmp_path, server, run)
    assert_failed(result, source, "too-large", goods)
    assert peak < MEMORY_LIMIT, f"peak {peak} bytes for 50000 × 50000 declared pixels"


# -- what the body is ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/img/html-as-png", "/img/json-as-png"])
@pytest_twisted.ensureDeferred
async def test_text_under_image_type(crawl: Crawl, server: MockServer, path: str) -> None:
    source = f"{server.url}{path}"
    goods = good_sources(server)
    result = await crawl_with(crawl, source, goods)
    assert_failed(result, source, "content-mismatch", goods)


@pytest_twisted.ensureDeferred
async def test_zero_byte_body(crawl: Crawl, server: MockServer) -> None:
    source = f"{server.url}/img/empty"
    goods = good_sources(server)
    result = await crawl_with(crawl, source, goods)
    assert_failed(result, source, "empty", goods)


@pytest.mark.parametrize("path", ["/big/declared", "/big/chunked"])
@pytest_twisted.ensureDeferred
async def test_body_past_size_limit(crawl: Crawl, server: MockServer, path: str) -> None:
    source = f"{server.url}{path}"
    goods = good_sources(server)
    result = await crawl_with(crawl, source, goods, {"MEDIAPIPE_MAX_SIZE": BIG_LIMIT})
    assert_failed(result, source, "too-large", goods)


# -- data: URIs ------------------------------------------------------------------------------

MALFORMED_DATA_URIS = {
    "no-comma": "data:image/png;base64",
    "empty-header": "data:",
    "outside-alphabet": "data:image/png;base64,@@@@",
    "padding-inside": "data:image/png;base64,iVBO=RwAA",
    "bad-padding": "data:image/png;base64,abc",
    "only-padding": "data:image/png;base64,====",
    "bad-escape": "data:image/png;base64,iVBORw0KGgo%ZZ",
}


@pytest.mark.parametrize("kind", sorted(MALFORMED_DATA_URIS))
@pytest_twisted.ensureDeferred
async def test_malformed_data_uri(crawl: Crawl, server: MockServer, kind: str) -> None:
    source = MALFORMED_DATA_URIS[kind]
    goods = good_sources(server)
    result = await crawl_with(crawl, source, goods)
    assert_failed(result, source, "bad-data-uri", goods)


def big_png() -> bytes:
    """PNG bytes padded with zeros to the size whose base64 is ~50 MB."""
    size = DATA_URI_CHARS // 4 * 3
    return media.PNG + bytes(size - len(media.PNG))


@pytest_twisted.ensureDeferred
async def test_50_mb_data_uri_is_stored(crawl: Crawl, server: MockServer) -> None:
    payload = big_png()
    source = "data:image/png;base64," + base64.b64encode(payload).decode()
    assert len(source) >= DATA_URI_CHARS
    goods = good_sources(server)
    result = await crawl_with(crawl, source, goods)
    assert_stored(result, source, payload, "data")
    assert result.items[0]["media"][1]["mime"] == "image/png"
    assert_goods_stored(result, goods)


@pytest_twisted.ensureDeferred
async def test_50_mb_malformed_data_uri(crawl: Crawl, server: MockServer) -> None:
    encoded = base64.b64encode(big_png()).decode()
    middle = len(encoded) // 2
    source = "data:image/png;base64," + encoded[:middle] + "!" + encoded[middle + 1 :]
    goods = good_sources(server)
    result = await crawl_with(crawl, source, goods)
    assert_failed(result, source, "bad-data-uri", goods)
    assert all(len(line) < 1000 for line in result.warnings), [len(w) for w in result.warnings]


# -- long and strange inputs -------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_8_kb_url_is_stored(crawl: Crawl, server: MockServer) -> None:
    source = f"{server.url}/img/png?q=" + "x" * 7998
    goods = good_sources(server)
    result = await crawl_with(crawl, source, goods)
    name = assert_stored(result, source, media.PNG, "downloaded")
    assert name == f"{LAST_MODIFIED_EPOCH}_{h16(source)}.png"
    assert unquote(result.items[0]["images"][1]).endswith("?url=" + source)
    assert_goods_stored(result, goods)


@pytest_twisted.ensureDeferred
async def test_hostile_alt_text_gives_a_safe_name(crawl: Crawl, server: MockServer) -> None:
    source = f"{server.url}/img/png?alt"
    alt = (
        unicodedata.normalize("NFD", "Café Amélie ")
        + "\u202eevil\u202c \u200bzero\u200d width\ufeff 😀🐈 "
        + "猫" * 1000
    )
    goods = good_sources(server)
    result = await crawl_with(crawl, source, goods, alt=[None, alt, None])
    name = assert_stored(result, source, media.PNG, "downloaded")
    assert unicodedata.is_normalized("NFC", name)
    for invisible in ("\u202e", "\u202c", "\u200b", "\u200d", "\ufeff", "\u0301"):
        assert invisible not in name
    assert "😀" not in name
    assert "🐈" not in name
    assert len(name.encode("utf-8")) <= 200
    assert name.startswith(f"{LAST_MODIFIED_EPOCH}_Café_Amélie_evil_zero_width_猫")
    assert name.endswith(f"_{h16(source)}.png")
    assert_goods_stored(result, goods)
