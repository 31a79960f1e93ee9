"""Honest failures (contract §9): a request a downloader middleware drops gets its own reason and
no retry; a bug of ours is ``internal``, logged at ERROR with its traceback, and the crawl goes
on; faults injected in the writer lanes, the decoder and the ``data:`` path never commit a
damaged file, never leak a temporary file, and never lose the item. Media requests bypass
Scrapy's HTTP cache."""

from __future__ import annotations

import base64
import errno
import logging
import os
import threading
from typing import TYPE_CHECKING, Any

import pytest_twisted
from scrapy.exceptions import IgnoreRequest

from mediapipe import naming as naming_module
from mediapipe import store as store_module
from mediapipe.transfer import Transfer
from tests import media
from tests.mockserver import body
from tests.storecheck import leftovers, stored_files

if TYPE_CHECKING:
    from pathlib import Path

    import pytest
    from scrapy import Request

    from tests.conftest import Crawl, CrawlResult
    from tests.mockserver import MockServer

# A real image of about 360 KB: more than the spool gathers before its first lane write.
BMP = media.image_bytes("BMP", (400, 300), "purple")
ROBOTS = b"User-agent: *\nDisallow: /private/\n"


def errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


def assert_internal(result: CrawlResult, caplog: pytest.LogCaptureFixture, source: str) -> None:
    (error,) = [r for r in errors(caplog) if r.name.startswith("mediapipe")]
    assert error.getMessage().startswith(f"Media (failed: internal): {source} (")
    assert error.exc_info is not None  # the traceback is in the log
    assert result.stat("mediapipe/failed/internal") == 1
    assert result.stat("mediapipe/retry/count") == 0


# -- requests dropped by downloader middlewares -------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_robots_txt_refusal_is_robots_and_not_retried(
    crawl: Crawl, server: MockServer
) -> None:
    server.httpd.routes["/robots.txt"] = body(ROBOTS, "text/plain")
    server.httpd.routes["/private/a.png"] = body(media.PNG, "image/png")
    source = f"{server.url}/private/a.png"
    result = await crawl(
        [{"images": [source, f"{server.url}/img/png"]}],
        {"ROBOTSTXT_OBEY": True, "MEDIAPIPE_RETRY_TIMES": 2},
    )
    refused, png = result.items[0]["media"]
    assert (refused["status"], refused["reason"]) == ("failed", "robots")
    assert png["status"] == "downloaded"
    assert server.count("/private/a.png") == 0
    assert server.count("/robots.txt") == 1
    assert result.stat("mediapipe/retry/count") == 0
    assert result.stat("mediapipe/failed/robots") == 1
    assert result.warnings == [
        f"Media (failed: robots): {source} (forbidden by robots.txt (ROBOTSTXT_OBEY); "
        "set ROBOTSTXT_OBEY = False to fetch it anyway)"
    ]


class DropMedia:
    """A project's downloader middleware that refuses some requests."""

    def process_request(self, request: Request) -> None:
        if "/drop/" in request.url:
            raise IgnoreRequest("not wanted here")


class BrokenMiddleware:
    """A downloader middleware with a bug."""

    def process_request(self, request: Request) -> None:
        if "/broken/" in request.url:
            raise ZeroDivisionError("division by zero")


@pytest_twisted.ensureDeferred
async def test_request_dropped_by_a_middleware_is_ignored_and_not_retried(
    crawl: Crawl, server: MockServer
) -> None:
    source = f"{server.url}/drop/a.png"
    result = await crawl(
        [{"images": [source, f"{server.url}/img/png"]}],
        {
            "DOWNLOADER_MIDDLEWARES": {f"{__name__}.DropMedia": 543},
            "MEDIAPIPE_RETRY_TIMES": 2,
        },
    )
    dropped, png = result.items[0]["media"]
    assert (dropped["status"], dropped["reason"]) == ("failed", "ignored")
    assert png["status"] == "downloaded"
    assert server.count("/drop/a.png") == 0
    assert result.stat("mediapipe/retry/count") == 0
    assert result.warnings == [
        f"Media (failed: ignored): {source} "
        "(a downloader middleware dropped the request (not wanted here))"
    ]


@pytest_twisted.ensureDeferred
async def test_unexpected_exception_is_internal_logged_with_traceback(
    crawl: Crawl, server: MockServer, caplog: pytest.LogCaptureFixture
) -> None:
    source = f"{server.url}/broken/a.png"
    result = await crawl(
        [{"images": [source, f"{server.url}/img/png"]}, {"images": [f"{server.url}/img/gif"]}],
        {
            "DOWNLOADER_MIDDLEWARES": {f"{__name__}.BrokenMiddleware": 543},
            "MEDIAPIPE_RETRY_TIMES": 2,
            "CONCURRENT_ITEMS": 1,
        },
    )
    broken, png = result.items[0]["media"]
    assert (broken["status"], broken["reason"]) == ("failed", "internal")
    assert broken["url"] == source
    assert png["status"] == "downloaded"
    assert result.items[1]["media"][0]["status"] == "downloaded"  # the crawl went on
    assert_internal(result, caplog, source)
    assert "ZeroDivisionError" in caplog.text
    assert result.warnings == []  # an ERROR, not a WARNING


@pytest_twisted.ensureDeferred
async def test_bug_in_the_pipeline_is_internal_and_keeps_the_item(
    crawl: Crawl,
    server: MockServer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken_name(*args: Any, **kwargs: Any) -> str:
        raise KeyError("a bug")

    monkeypatch.setattr(naming_module, "build_name", broken_name)
    source = f"{server.url}/img/png"
    uri = "data:image/gif;base64," + base64.b64encode(media.GIF).decode()
    result = await crawl([{"images": [source, "/local.png", uri]}])
    assert len(result.items) == 1
    web, local, data = result.items[0]["media"]
    assert (web["status"], web["reason"]) == ("failed", "internal")
    assert (data["status"], data["reason"]) == ("failed", "internal")
    assert local["status"] == "local"
    assert result.items[0]["images"] == [source, "/local.png", uri]
    assert stored_files(crawl.store) == {}
    assert leftovers(crawl.store) == []
    assert result.stat("mediapipe/failed/internal") == 2


# -- faults injected in the write path ----------------------------------------------------------


def open_store_descriptors(store: Path) -> list[str]:
    folder = "/proc/self/fd"
    found = []
    for fd in os.listdir(folder):
        try:
            target = os.readlink(os.path.join(folder, fd))
        except OSError:
            continue
        if target.startswith(str(store.resolve())):
            found.append(target)
    return found


@pytest_twisted.ensureDeferred
async def test_exception_in_a_lane_write_never_commits_a_short_file(
    crawl: Crawl,
    server: MockServer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = store_module.TempFile.write
    lock = threading.Lock()
    state = {"armed": True}

    def write(self: store_module.TempFile, data: bytes | memoryview) -> None:
        # The second piece of the big file fails with something that is not an OSError.
        with lock:
            fail = state["armed"] and self.size > 0
            state["armed"] = state["armed"] and not fail
        if fail:
            raise MemoryError("injected")
        original(self, data)

    monkeypatch.setattr(store_module.TempFile, "write", write)
    server.httpd.routes["/big.bmp"] = body(BMP, "image/bmp")
    source = f"{server.url}/big.bmp"
    result = await crawl(
        [{"images": [source]}, {"images": [f"{server.url}/img/png"]}], {"CONCURRENT_ITEMS": 1}
    )
    record = result.items[0]["media"][0]
    assert (record["status"], record["reason"]) == ("failed", "internal"), record
    assert result.items[1]["media"][0]["status"] == "downloaded"
    assert stored_files(crawl.store) == {result.items[1]["media"][0]["path"]: media.PNG}
    assert leftovers(crawl.store) == []
    assert_internal(result, caplog, source)


@pytest_twisted.ensureDeferred
async def test_disk_error_while_decoding_leaks_nothing(
    crawl: Crawl, server: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(self: Transfer, target: store_module.TempFile, data: bytes) -> None:
        if target.size:
            raise OSError(errno.ENOSPC, "No space left on device")
        target.write(data)

    monkeypatch.setattr(Transfer, "_write_limited", full_disk)
    import gzip

    server.httpd.routes["/big.bmp.gz"] = body(
        gzip.compress(BMP), "image/bmp", **{"Content-Encoding": "gzip"}
    )
    source = f"{server.url}/big.bmp.gz"
    result = await crawl([{"images": [source]}])
    record = result.items[0]["media"][0]
    assert (record["status"], record["reason"]) == ("failed", "storage"), record
    assert stored_files(crawl.store) == {}
    assert leftovers(crawl.store) == []
    assert open_store_descriptors(crawl.store) == []
    assert "No space left on device" in result.warnings[0]


@pytest_twisted.ensureDeferred
async def test_close_error_on_the_data_uri_path_is_storage(
    crawl: Crawl, server: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = store_module.TempFile.close
    state = {"armed": True}

    def close(self: store_module.TempFile) -> None:
        if state["armed"] and self.size:
            state["armed"] = False
            raise OSError(errno.EIO, "Input/output error")
        original(self)

    monkeypatch.setattr(store_module.TempFile, "close", close)
    uri = "data:image/png;base64," + base64.b64encode(media.PNG).decode()
    result = await crawl(
        [{"images": [uri]}, {"images": [f"{server.url}/img/gif"]}], {"CONCURRENT_ITEMS": 1}
    )
    assert len(result.items) == 2
    record = result.items[0]["media"][0]
    assert (record["status"], record["reason"]) == ("failed", "storage"), record
    assert result.items[0]["images"] == [uri]
    gif = result.items[1]["media"][0]
    assert gif["status"] == "downloaded"
    assert stored_files(crawl.store) == {gif["path"]: media.GIF}
    assert leftovers(crawl.store) == []
    assert open_store_descriptors(crawl.store) == []


# -- Scrapy's HTTP cache ------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_http_cache_does_not_break_media(
    crawl: Crawl, server: MockServer, tmp_path: Path
) -> None:
    settings = {
        "HTTPCACHE_ENABLED": True,
        "HTTPCACHE_DIR": str(tmp_path / "httpcache"),
        "MEDIAPIPE_EXPIRES": 0,  # every run downloads again
    }
    sources = [f"{server.url}/img/png", f"{server.url}/img/jpeg"]
    for run in range(2):
        result = await crawl([{"images": sources}], settings)
        records = result.items[0]["media"]
        assert [(r["status"], r["reason"]) for r in records] == [("downloaded", None)] * 2, run
        assert [(crawl.store / r["path"]).read_bytes() for r in records] == [
            media.PNG,
            media.JPEG,
        ]
    # Both runs reached the server: nothing was served from (or stored in) Scrapy's cache.
    assert server.count("/img/png") == 2
    assert server.count("/img/jpeg") == 2
