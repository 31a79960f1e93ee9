"""The periodic progress lines: pages without media, and the media downloads on their own line."""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING, Any

import pytest
import pytest_twisted
from scrapy import Request
from scrapy.extensions.logstats import LogStats
from scrapy.settings import Settings

from mediapipe import Addon
from mediapipe.progress import MediaLogStats
from mediapipe.settings import SettingError
from tests import media
from tests.conftest import ItemsSpider
from tests.mockserver import body, slow

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from spiders.site_server import SiteHandler
    from tests.conftest import Crawl, CrawlResult
    from tests.mockserver import MockServer

SCRAPY_LOGSTATS = "scrapy.extensions.logstats.LogStats"
PROGRESS = "mediapipe.progress.MediaLogStats"
INTERVAL = 0.2
PER_MINUTE = 60 / INTERVAL
BIG = 2_000_000  # bytes of the large image: "2.0 MB"

CRAWLED = re.compile(
    r"Crawled (\d+) pages \(at (\d+) pages/min\), scraped (\d+) items \(at (\d+) items/min\)"
)
MEDIA = re.compile(
    r"mediapipe: (\d+) stored \((\d+\.\d) MB\), (\d+) failed, (\d+) in flight; "
    r"(\d+) files/min, (\d+\.\d) MB/min"
)


def progress_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "mediapipe.progress" and record.levelno == logging.INFO
    ]


def crawled(lines: list[str]) -> list[tuple[int, ...]]:
    matches = [CRAWLED.fullmatch(line) for line in lines if line.startswith("Crawled ")]
    assert all(matches), lines
    return [tuple(int(n) for n in match.groups()) for match in matches if match]


def media_counts(lines: list[str]) -> list[tuple[int, float, int, int, int, float]]:
    matches = [MEDIA.fullmatch(line) for line in lines if line.startswith("mediapipe: ")]
    assert all(matches), lines
    return [
        (int(m[1]), float(m[2]), int(m[3]), int(m[4]), int(m[5]), float(m[6])) for m in matches if m
    ]


# -- the add-on swaps the extensions -------------------------------------------------------------


def test_addon_puts_media_logstats_in_place_of_scrapy_logstats() -> None:
    settings = Settings()

    Addon().update_settings(settings)

    assert settings.getdict("EXTENSIONS") == {SCRAPY_LOGSTATS: None, PROGRESS: 0}
    assert settings.getwithbase("EXTENSIONS")[SCRAPY_LOGSTATS] is None


@pytest.mark.parametrize(
    "own",
    [
        {SCRAPY_LOGSTATS: None},
        {SCRAPY_LOGSTATS: 10},
        {LogStats: 0},
        {"tests.test_progress.ProjectLogStats": 0, SCRAPY_LOGSTATS: None},
        {PROGRESS: None},
        {MediaLogStats: 5},
    ],
    ids=["logstats-off", "logstats-moved", "logstats-class", "subclass", "ours-off", "ours-class"],
)
def test_addon_keeps_the_progress_extensions_the_project_set(own: dict[Any, Any]) -> None:
    settings = Settings({"EXTENSIONS": dict(own)}, priority="project")

    Addon().update_settings(settings)

    assert settings.getdict("EXTENSIONS") == own


def test_addon_keeps_other_project_extensions() -> None:
    # A path that does not load is Scrapy's to report when it loads the extensions.
    own = {"scrapy.extensions.closespider.CloseSpider": 500, "myproject.ext.Missing": 1}
    settings = Settings({"EXTENSIONS": dict(own)}, priority="project")

    Addon().update_settings(settings)

    assert settings.getdict("EXTENSIONS") == {
        **own,
        SCRAPY_LOGSTATS: None,
        PROGRESS: 0,
    }


class ProjectLogStats(LogStats):
    """A project's own periodic line."""


# -- in a crawl ----------------------------------------------------------------------------------


async def slow_crawl(crawl: Crawl, server: MockServer, settings: dict[str, Any]) -> CrawlResult:
    """One item of quick sources (three small images, a 2 MB one, a 404) and one whose only
    source answers after a second, so that lines are logged while it is in flight."""
    server.httpd.routes["/progress/big.png"] = body(
        media.PNG + bytes(BIG - len(media.PNG)), "image/png"
    )
    server.httpd.routes["/progress/slow.png"] = slow(1.0)
    quick = ["/img/png", "/img/gif", "/img/jpeg", "/progress/big.png", "/status/404"]
    items = [
        {"images": [server.url + path for path in quick]},
        {"images": [f"{server.url}/progress/slow.png"]},
    ]
    return await crawl(items, settings)


@pytest_twisted.ensureDeferred
async def test_progress_lines_keep_media_apart_from_pages(
    crawl: Crawl, server: MockServer, caplog: pytest.LogCaptureFixture
) -> None:
    result = await slow_crawl(crawl, server, {"LOGSTATS_INTERVAL": INTERVAL})

    lines = progress_lines(caplog)
    pages = crawled(lines)
    progress = media_counts(lines)
    # Scrapy's line comes first on every tick, the media line right after it once media began.
    assert lines[0] == "Crawled 0 pages (at 0 pages/min), scraped 0 items (at 0 items/min)"
    for index, line in enumerate(lines):
        if line.startswith("mediapipe: "):
            assert lines[index - 1].startswith("Crawled "), lines
    # The spider's one page (its data: request); the six media responses are not pages.
    assert {count for count, *_ in pages} <= {0, 1}
    assert pages[-1][0] == 1
    assert result.stat("response_received_count") == 7
    assert result.stat("mediapipe/responses") == 6
    # While the slow source is in flight: the quick item is done (4 files, the 404 failed).
    assert (4, 2.0, 1, 1) in {counts[:4] for counts in progress}
    # The rates of all lines add up to what was stored when the last line was logged.
    last_files, last_mb = progress[-1][0], progress[-1][1]
    assert sum(files for *_, files, _ in progress) == last_files * PER_MINUTE
    rounding = 0.05 * (len(progress) + PER_MINUTE)
    assert sum(mb for *_, mb in progress) == pytest.approx(last_mb * PER_MINUTE, abs=rounding)
    # Two of the sources have the same bytes: the second is a link to the first file.
    assert result.stat("mediapipe/stored_files") == 4
    assert result.stat("mediapipe/deduplicated") == 1
    small = len(media.PNG) + len(media.GIF) + len(media.JPEG)
    assert result.stat("mediapipe/stored_bytes") == BIG + small


@pytest_twisted.ensureDeferred
async def test_no_lines_with_interval_zero_but_media_responses_still_counted(
    crawl: Crawl, server: MockServer, caplog: pytest.LogCaptureFixture
) -> None:
    result = await crawl(
        [{"images": [f"{server.url}/img/png", f"{server.url}/status/404"]}],
        {"LOGSTATS_INTERVAL": 0},
    )

    assert progress_lines(caplog) == []
    assert result.stat("mediapipe/responses") == 2
    assert result.stat("response_received_count") - result.stat("mediapipe/responses") == 1
    assert "pages (at" not in caplog.text


class PageFirstSpider(ItemsSpider):
    """Fetches its item's ``page`` first, as a spider crawls a page before its items."""

    async def start(self) -> AsyncIterator[Any]:
        yield Request(self._items[0]["page"], callback=self.emit, dont_filter=True)


def slow_page(handler: SiteHandler) -> None:
    time.sleep(0.7)
    handler.send_body(200, media.HTML, "text/html")


@pytest_twisted.ensureDeferred
async def test_no_media_line_without_media(
    crawl: Crawl, server: MockServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.httpd.routes["/progress/page.html"] = slow_page
    # A local path and None make no request: only the page is downloaded.
    items = [{"page": f"{server.url}/progress/page.html", "images": ["/static/local.png", None]}]

    result = await crawl(items, {"LOGSTATS_INTERVAL": INTERVAL}, spider=PageFirstSpider)

    lines = progress_lines(caplog)
    assert len(lines) >= 3  # at the start, then while the page is on its way
    assert {count for count, *_ in crawled(lines)} <= {0, 1}
    assert [line for line in lines if not line.startswith("Crawled ")] == []
    assert result.stat("mediapipe/status/local") == 2
    assert result.stat("response_received_count") == 1
    assert result.stat("mediapipe/responses") == 0


@pytest_twisted.ensureDeferred
async def test_the_project_own_logstats_counts_media_as_pages(
    crawl: Crawl, server: MockServer, caplog: pytest.LogCaptureFixture
) -> None:
    """What the swap is for: Scrapy's own line, kept by a project that asked for it."""
    result = await slow_crawl(
        crawl,
        server,
        {"LOGSTATS_INTERVAL": INTERVAL, "EXTENSIONS": {SCRAPY_LOGSTATS: 0}},
    )

    assert progress_lines(caplog) == []
    scrapy_lines = [
        record.getMessage()
        for record in caplog.records
        if record.name == "scrapy.extensions.logstats"
    ]
    assert max(count for count, *_ in crawled(scrapy_lines)) > 1
    assert "mediapipe/responses" not in result.stats


@pytest_twisted.ensureDeferred
async def test_negative_interval_fails_at_start(crawl: Crawl, server: MockServer) -> None:
    with pytest.raises(SettingError, match="LOGSTATS_INTERVAL"):
        await crawl([{"images": [f"{server.url}/img/png"]}], {"LOGSTATS_INTERVAL": -1})

    assert server.requested == []
