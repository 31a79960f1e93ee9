"""Periodic progress lines that keep media downloads apart from pages."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scrapy import signals

from mediapipe.middleware import media_transfer
from mediapipe.settings import SettingError

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)

RESPONSES_STAT = "mediapipe/responses"
MB = 1_000_000


@dataclass(frozen=True, slots=True)
class Progress:
    """The counters one progress line is made of."""

    pages: int
    items: int
    files: int
    stored_bytes: int
    failed: int
    in_flight: int
    media_responses: int

    @classmethod
    def read(cls, stats: StatsCollector, in_flight: int) -> Progress:
        media_responses = stats.get_value(RESPONSES_STAT, 0)
        return cls(
            # Media requests go through engine.download_async, whose responses Scrapy's
            # CoreStats counts as pages too.
            pages=stats.get_value("response_received_count", 0) - media_responses,
            items=stats.get_value("item_scraped_count", 0),
            # A deduplicated source is stored too, though no byte of it was written.
            files=stats.get_value("mediapipe/stored_files", 0)
            + stats.get_value("mediapipe/deduplicated", 0),
            stored_bytes=stats.get_value("mediapipe/stored_bytes", 0),
            failed=stats.get_value("mediapipe/status/failed", 0),
            in_flight=in_flight,
            media_responses=media_responses,
        )

    @property
    def has_media(self) -> bool:
        return bool(self.files or self.failed or self.in_flight or self.media_responses)


class MediaLogStats:
    """Scrapy's ``LogStats``, with media kept apart from pages.

    Every ``LOGSTATS_INTERVAL`` seconds it logs Scrapy's ``Crawled … pages`` line, counting as
    pages only the responses that are not media, and, once media downloads have begun, a
    ``mediapipe:`` line of files stored, failed and in flight. Media responses are counted in
    the ``mediapipe/responses`` stat even when the interval is 0 (no lines).
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.interval = crawler.settings.getfloat("LOGSTATS_INTERVAL")
        if self.interval < 0:
            raise SettingError(
                f"LOGSTATS_INTERVAL = {self.interval!r}: use a number of seconds, or 0 for no "
                "progress lines"
            )
        self.in_flight = 0
        self._previous: Progress | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._next_tick = 0.0
        self._opened_at = 0.0
        crawler.signals.connect(self._spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self._spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(self._response_received, signal=signals.response_received)
        crawler.signals.connect(self._reached, signal=signals.request_reached_downloader)
        crawler.signals.connect(self._left, signal=signals.request_left_downloader)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    @property
    def stats(self) -> StatsCollector:
        assert self.crawler.stats is not None
        return self.crawler.stats

    # -- signals -------------------------------------------------------------------------------

    def _spider_opened(self) -> None:
        self._opened_at = time.monotonic()
        if self.interval:
            loop = asyncio.get_running_loop()
            self._next_tick = loop.time()
            self._tick()

    def _spider_closed(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        # Scrapy's LogStats leaves these two behind; keep them for whoever reads them.
        minutes = (time.monotonic() - self._opened_at) / 60
        responses = self.stats.get_value("response_received_count", 0)
        items = self.stats.get_value("item_scraped_count", 0)
        self.stats.set_value("responses_per_minute", responses / minutes if minutes else None)
        self.stats.set_value("items_per_minute", items / minutes if minutes else None)

    def _response_received(self, request: Request, **_: object) -> None:
        if media_transfer(request) is not None:
            self.stats.inc_value(RESPONSES_STAT)

    def _reached(self, request: Request, **_: object) -> None:
        if media_transfer(request) is not None:
            self.in_flight += 1

    def _left(self, request: Request, **_: object) -> None:
        if media_transfer(request) is not None:
            self.in_flight -= 1

    # -- the lines -----------------------------------------------------------------------------

    def _tick(self) -> None:
        self.log()
        loop = asyncio.get_running_loop()
        # Fixed deadlines, so that lines do not drift; ticks missed while the loop was busy are
        # skipped rather than logged in a burst.
        self._next_tick += self.interval
        if self._next_tick <= loop.time():
            self._next_tick = loop.time() + self.interval
        self._timer = loop.call_at(self._next_tick, self._tick)

    def log(self) -> None:
        """Log the progress lines now; rates are over the last interval."""
        now = Progress.read(self.stats, self.in_flight)
        before = self._previous or Progress(0, 0, 0, 0, 0, 0, 0)
        self._previous = now
        per_minute = 60.0 / self.interval if self.interval else 0.0
        logger.info(
            "Crawled %d pages (at %d pages/min), scraped %d items (at %d items/min)",
            now.pages,
            (now.pages - before.pages) * per_minute,
            now.items,
            (now.items - before.items) * per_minute,
        )
        if not now.has_media:
            return
        logger.info(
            "mediapipe: %d stored (%.1f MB), %d failed, %d in flight; %d files/min, %.1f MB/min",
            now.files,
            now.stored_bytes / MB,
            now.failed,
            now.in_flight,
            (now.files - before.files) * per_minute,
            (now.stored_bytes - before.stored_bytes) / MB * per_minute,
        )
