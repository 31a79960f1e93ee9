"""The private Scrapy, Twisted and aiohttp names of :mod:`mediapipe.compat`: one test per name,
so that a release that renames one fails one clear test; and the fallback to Scrapy's own
download handlers when one is missing."""

from __future__ import annotations

import json
import logging
import textwrap
from typing import TYPE_CHECKING, Any

import pytest
import pytest_twisted
from scrapy import signals
from scrapy.utils.test import get_crawler

from mediapipe import compat
from tests import media
from tests.conftest import ItemsSpider
from tests.scripts import run_python
from tests.storecheck import stored_files

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import Crawl
    from tests.mockserver import MockServer

GONE_TWISTED = "scrapy.core.downloader.handlers.http11:_ScrapyAgent._renamed_in_a_new_release"
GONE_AIOHTTP = "scrapy.core.downloader.handlers._aiohttp:AiohttpDownloadHandler@_gone"


@pytest.mark.parametrize("name", compat.ALL_NAMES)
def test_private_name_exists(name: str) -> None:
    assert compat.exists(name), f"this Scrapy/Twisted/aiohttp has no {name}"


@pytest.mark.parametrize(
    "name",
    [
        "scrapy.core.downloader.handlers.http11:_NoSuchClass",
        "scrapy.no_such_module:Anything",
        GONE_TWISTED,
        "scrapy.core.downloader.handlers.http11:_ResponseReader@_no_such_attribute",
        "scrapy.core.downloader.handlers.http11:_no_such_function@_bodybuf",
    ],
)
def test_a_missing_name_is_reported_missing(name: str) -> None:
    assert not compat.exists(name)


def test_streaming_is_supported_here() -> None:
    assert compat.streaming_supported(reactor=True) == (True, "")
    assert compat.streaming_supported(reactor=False) == (True, "")


@pytest.mark.parametrize(("reactor", "table"), [(True, "TWISTED_NAMES"), (False, "AIOHTTP_NAMES")])
def test_streaming_unsupported_names_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, reactor: bool, table: str
) -> None:
    gone = GONE_TWISTED if reactor else GONE_AIOHTTP
    monkeypatch.setattr(compat, table, (*getattr(compat, table), gone))
    supported, why = compat.streaming_supported(reactor=reactor)
    assert not supported
    assert gone in why
    assert "held in memory" in why
    # The other mode is not affected.
    assert compat.streaming_supported(reactor=not reactor) == (True, "")


def fallback_lines(records: list[logging.LogRecord]) -> list[str]:
    return [
        r.getMessage()
        for r in records
        if r.levelno == logging.WARNING and "cannot stream media bodies" in r.getMessage()
    ]


@pytest_twisted.ensureDeferred
async def test_twisted_crawl_falls_back_to_scrapys_handler(
    crawl: Crawl,
    server: MockServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(compat, "TWISTED_NAMES", (*compat.TWISTED_NAMES, GONE_TWISTED))
    sources = [f"{server.url}/img/png", f"{server.url}/media/cat.jpg", f"{server.url}/img/page"]
    scraped: list[Any] = []

    def collect(item: Any) -> None:
        scraped.append(item)

    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        # From the crawler's creation on: the add-on may decide (and warn) that early.
        crawler = get_crawler(ItemsSpider, crawl.settings())
        crawler.signals.connect(collect, signal=signals.item_scraped)
        await crawler.crawl(items=[{"images": sources}])
    png, jpg, page = scraped[0]["media"]
    assert (png["status"], jpg["status"]) == ("downloaded", "downloaded")
    assert (page["status"], page["reason"]) == ("failed", "content-type")
    files = stored_files(crawl.store)
    assert files[png["path"]] == media.PNG
    assert len(files[jpg["path"]]) == jpg["size"] > 0
    assert set(files) == {png["path"], jpg["path"]}
    [line] = fallback_lines(caplog.records)  # one line for the crawl, not one per scheme
    assert GONE_TWISTED in line
    assert crawler.stats is not None
    assert crawler.stats.get_value("mediapipe/status/downloaded") == 2


FALLBACK_SCRIPT = """\
import asyncio
import json
import sys

from mediapipe import compat, copy_media

SOURCES, GONE = json.loads(sys.argv[1])
compat.AIOHTTP_NAMES = (*compat.AIOHTTP_NAMES, GONE)
settings = {"MEDIAPIPE_ALLOW_PRIVATE_NETWORKS": True}
print(json.dumps(asyncio.run(copy_media(SOURCES, settings=settings, return_target=True))))
"""


def test_copy_media_without_reactor_falls_back_to_scrapys_handler(
    tmp_path: Path, server: MockServer
) -> None:
    sources = [f"{server.url}/img/png", f"{server.url}/img/gif"]
    process = run_python(
        tmp_path, "fallback.py", FALLBACK_SCRIPT, json.dumps([sources, GONE_AIOHTTP])
    )
    result = json.loads(process.stdout.splitlines()[-1])
    store = tmp_path / "generated_images"
    assert [(store / path).read_bytes() for _, path in result] == [media.PNG, media.GIF]
    # Nothing else on stderr: the one line naming what is missing.
    lines = [line for line in process.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "mediapipe cannot stream media bodies" in lines[0]
    assert GONE_AIOHTTP in lines[0]


IMPORT_SCRIPT = """\
import json
import sys

# A Scrapy without the aiohttp handler module and with the Twisted agent renamed.
sys.modules["scrapy.core.downloader.handlers._aiohttp"] = None
import scrapy.core.downloader.handlers.http11 as http11

del http11._ScrapyAgent, http11._ResponseReader

import mediapipe.handlers
from mediapipe import compat

print(json.dumps([compat.missing(True), compat.missing(False)]))
"""


def test_handlers_import_whatever_is_missing(tmp_path: Path) -> None:
    process = run_python(tmp_path, "imports.py", textwrap.dedent(IMPORT_SCRIPT))
    twisted, aiohttp = json.loads(process.stdout)
    assert "scrapy.core.downloader.handlers.http11:_ScrapyAgent._cb_bodyready" in twisted
    assert "scrapy.core.downloader.handlers.http11:_ResponseReader@_bodybuf" in twisted
    assert aiohttp == ["scrapy.core.downloader.handlers._aiohttp"]
