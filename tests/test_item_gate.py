"""The pipeline resolves at most ``CONCURRENT_ITEMS`` items at once, crawl-wide: items that
many responses (or ``start()``) yield together wait as items, not as a task per source."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest_twisted
from scrapy import Request, Spider, signals
from scrapy.utils.test import get_crawler

from tests import media
from tests.storecheck import stored_files

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


class OrderSpider(Spider):
    """One item per page: "first"; once it is done, "slow", whose source takes 3 s; once that
    source is being fetched, "again", whose sources are all known. Notes the order in which
    the items come out of the pipeline."""

    name = "order"

    def __init__(self, fast: str, slow_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fast = fast
        self.slow_url = slow_url
        self.order: list[str] = []

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.note, signal=signals.item_scraped)
        crawler.signals.connect(spider.sent, signal=signals.request_reached_downloader)
        return spider

    async def start(self) -> AsyncIterator[Any]:
        yield self.page("first")

    def page(self, name: str) -> Request:
        return Request(f"data:,{name}", callback=self.emit, cb_kwargs={"name": name})

    def emit(self, response: Response, name: str) -> Iterator[Any]:
        sources = {
            "first": [self.fast],
            "slow": [self.slow_url],
            "again": [self.fast, None, "/local.png"],
        }[name]
        yield {"name": name, "images": sources}

    def note(self, item: Any, **_: Any) -> None:
        self.order.append(item["name"])
        if item["name"] == "first":
            self.crawler.engine.crawl(self.page("slow"))

    def sent(self, request: Request, **_: Any) -> None:
        if request.url == self.slow_url:
            self.crawler.engine.crawl(self.page("again"))


@pytest_twisted.ensureDeferred
async def test_an_item_of_known_sources_does_not_wait_its_turn(
    crawl: Crawl, server: MockServer
) -> None:
    fast, slow_url = f"{server.url}/img/gif", f"{server.url}/slow"
    crawler = get_crawler(OrderSpider, crawl.settings({"CONCURRENT_ITEMS": 1}))
    scraped: list[Any] = []

    def collect(item: Any) -> None:
        scraped.append(item)

    crawler.signals.connect(collect, signal=signals.item_scraped)
    await crawler.crawl(fast=fast, slow_url=slow_url)
    assert crawler.spider is not None
    # "again" came out while "slow" held the only turn: it did not wait for it.
    assert crawler.spider.order == ["first", "again", "slow"]  # type: ignore[attr-defined]
    again = next(item for item in scraped if item["name"] == "again")
    assert [record["status"] for record in again["media"]] == ["downloaded", "local", "local"]
    assert stored_files(crawl.store)[again["media"][0]["path"]] == media.GIF
