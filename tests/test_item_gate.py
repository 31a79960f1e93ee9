"""The pipeline resolves at most ``CONCURRENT_ITEMS`` items at once, crawl-wide: items that
many responses (or ``start()``) yield together wait as items, not as a task per source."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest_twisted
from scrapy import Request, Spider, signals

from tests import media

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from typing import Self

    from scrapy.http import Response

    from tests.conftest import Crawl
    from tests.mockserver import MockServer

PAGES = 30
ITEMS_PER_PAGE = 10
SOURCES_PER_ITEM = 5
ITEMS_AT_ONCE = 4


class PagesSpider(Spider):
    """Thirty pages at once, each yielding ten items: Scrapy's CONCURRENT_ITEMS bounds the
    items of one response, so without the pipeline's own limit all 300 would resolve at once."""

    name = "pages"

    def __init__(self, items: list[Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._items = items
        self.most_tasks = 0

    async def start(self) -> AsyncIterator[Any]:
        for page in range(PAGES):
            yield Request(f"data:,page{page}", callback=self.emit, cb_kwargs={"page": page})

    def emit(self, response: Response, page: int) -> Iterator[Any]:
        yield from self._items[page * ITEMS_PER_PAGE : (page + 1) * ITEMS_PER_PAGE]

    def count_tasks(self, **_: Any) -> None:
        self.most_tasks = max(self.most_tasks, len(asyncio.all_tasks()))


@pytest_twisted.ensureDeferred
async def test_items_wait_for_their_turn_as_items(crawl: Crawl, server: MockServer) -> None:
    items = [
        {"images": [f"{server.url}/img/png?r={n}-{k}" for k in range(SOURCES_PER_ITEM)]}
        for n in range(PAGES * ITEMS_PER_PAGE)
    ]
    spiders: list[PagesSpider] = []

    class Counting(PagesSpider):
        @classmethod
        def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> Self:
            spider = super().from_crawler(crawler, *args, **kwargs)
            crawler.signals.connect(spider.count_tasks, signal=signals.response_received)
            spiders.append(spider)
            return spider

    result = await crawl(items, {"CONCURRENT_ITEMS": ITEMS_AT_ONCE}, spider=Counting)
    sources = PAGES * ITEMS_PER_PAGE * SOURCES_PER_ITEM
    assert result.stat("mediapipe/status/downloaded") == sources
    assert len(result.items) == PAGES * ITEMS_PER_PAGE
    for item in result.items:
        assert [record["status"] for record in item["media"]] == ["downloaded"] * 5
        assert (result.store / item["media"][0]["path"]).read_bytes() == media.PNG
    # A task per waiting item (Scrapy's) and one per source of the items resolving: far below
    # a task per source, which is what the limit is for.
    waiting_items = PAGES * ITEMS_PER_PAGE
    assert spiders[0].most_tasks < waiting_items + ITEMS_AT_ONCE * SOURCES_PER_ITEM + 60
    assert spiders[0].most_tasks < sources
