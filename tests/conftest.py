from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from scrapy import Request, Spider, signals
from scrapy.utils.test import get_crawler

from tests.mockserver import MockServer
from tests.redisserver import RedisServer
from tests.s3server import S3Server
from tests.storeviews import LocalView, S3View

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from scrapy.http import Response

    from tests.storeviews import StoreView


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One S3-compatible server on 127.0.0.1 for the whole session, started on first use."""
    running = S3Server(tmp_path_factory.mktemp("s3server"))
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh, empty redis-server on 127.0.0.1 for one test."""
    with RedisServer(tmp_path / "redis") as running:
        yield running


@pytest.fixture
def server() -> Iterator[MockServer]:
    with MockServer() as running:
        yield running


class ItemsSpider(Spider):
    """Yields the items it was given, as a spider yields scraped items."""

    name = "items"

    def __init__(self, items: list[Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._items = items

    async def start(self) -> AsyncIterator[Any]:
        # Items come from a callback, as in a real crawl; the engine notices the end of a
        # callback's item processing at once, but that of items from start() only at its next
        # 5-second heartbeat.
        yield Request("data:,", callback=self.emit, dont_filter=True)

    def emit(self, response: Response) -> Iterator[Any]:
        yield from self._items


@dataclass
class CrawlResult:
    items: list[Any]
    stats: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    store: Path = Path()

    def stat(self, name: str) -> int:
        return int(self.stats.get(name, 0))


@dataclass
class Crawl:
    """Runs in-process crawls of :class:`ItemsSpider` with the add-on switched on."""

    store: Path
    caplog: pytest.LogCaptureFixture

    def settings(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "ADDONS": {"mediapipe.Addon": 300},
            "MEDIAPIPE_STORE": str(self.store),
            "MEDIAPIPE_ALLOW_PRIVATE_NETWORKS": True,
            "DOWNLOAD_TIMEOUT": 10,
            "RETRY_ENABLED": False,
            "MEDIAPIPE_RETRY_TIMES": 0,
            "LOG_LEVEL": "DEBUG",
            **(extra or {}),
        }

    async def __call__(
        self,
        items: list[Any],
        settings: dict[str, Any] | None = None,
        spider: type = ItemsSpider,
        log_level: int = logging.DEBUG,
    ) -> CrawlResult:
        crawler = get_crawler(spider, self.settings(settings))
        scraped: list[Any] = []

        def collect(item: Any) -> None:
            scraped.append(item)

        crawler.signals.connect(collect, signal=signals.item_scraped)
        self.caplog.clear()
        with self.caplog.at_level(log_level):
            await crawler.crawl(items=items)
        warnings = [
            r.getMessage()
            for r in self.caplog.records
            if r.levelno == logging.WARNING and r.name.startswith("mediapipe")
        ]
        assert crawler.stats is not None
        return CrawlResult(scraped, crawler.stats.get_stats(), warnings, self.store)


@pytest.fixture
def crawl(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> Crawl:
    return Crawl(tmp_path / "store", caplog)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreView:
    """A fresh, empty store of each kind: a local folder, or a new prefix in the S3 server's
    bucket (the server starts only when an S3 case runs)."""
    if request.param == "local":
        return LocalView(tmp_path / "run")
    s3: S3Server = request.getfixturevalue("s3_server")
    return S3View(s3, f"run-{uuid.uuid4().hex[:12]}", tmp_path / "temp")
