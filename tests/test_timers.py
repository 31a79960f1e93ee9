"""Twisted timers cancelled during a crawl do not stay in memory until one of them fires."""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING, Any

import pytest_twisted
from scrapy import signals
from twisted.internet.base import DelayedCall

from tests import media
from tests.conftest import ItemsSpider
from tests.mockserver import slow
from tests.storecheck import stored_files

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler

    from tests.conftest import Crawl
    from tests.mockserver import MockServer

FAST_SOURCES = 300


def cancelled_timers() -> int:
    return sum(1 for item in gc.get_objects() if isinstance(item, DelayedCall) and item.cancelled)


class Counting(ItemsSpider):
    """Counts the cancelled timers still in memory when the slow source's answer comes."""

    counts: list[int]

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.counts = []
        crawler.signals.connect(spider.look, signal=signals.response_received)
        return spider

    def look(self, response: Any, **_: Any) -> None:
        if response.url.endswith("/timers/slow"):
            self.counts.append(cancelled_timers())


@pytest_twisted.ensureDeferred
async def test_cancelled_timers_are_dropped_while_the_crawl_runs(
    crawl: Crawl, server: MockServer
) -> None:
    # The fast sources are done within the first second; the slow one answers 2.5 s later,
    # after two ticks of the trim. Without it, the fast sources' cancelled timeouts and
    # connection expiries (180 s away) would all still be there.
    server.httpd.routes["/timers/slow"] = slow(2.5)
    fast = [f"{server.url}/img/png?n={number}" for number in range(FAST_SOURCES)]
    spiders: list[Counting] = []

    class Kept(Counting):
        @classmethod
        def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
            spider = super().from_crawler(crawler, *args, **kwargs)
            spiders.append(spider)
            return spider

    result = await crawl(
        [{"images": fast}, {"images": [f"{server.url}/timers/slow"]}],
        {"DOWNLOAD_TIMEOUT": 180, "MEDIAPIPE_DEDUPLICATE": False},
        spider=Kept,
    )
    assert result.stat("mediapipe/status/downloaded") == FAST_SOURCES + 1
    assert set(stored_files(result.store).values()) == {media.PNG}
    (count,) = spiders[0].counts
    assert count < FAST_SOURCES // 4, count
