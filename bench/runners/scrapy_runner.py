"""The Scrapy runners: the same spider and settings, with mediapipe, with FilesPipeline, or
with Scrapy's downloader alone (a pipeline that only downloads).

The spider yields items straight from ``start()`` (no pages to crawl): each item holds
``urls_per_item`` corpus URLs in the field the pipeline reads.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapy import Request, Spider, signals
from scrapy.crawler import AsyncCrawlerProcess

from bench.runners.job import LoopLag, source_fingerprint

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from scrapy.crawler import Crawler
    from scrapy.http import Response

    from bench.runners.job import Job, Meter

NO_LIMIT = 0
MEMORY = "(memory)"  # the path recorded by scrapy-downloader, which keeps nothing (verify.py)


class BenchSpider(Spider):
    name = "bench"

    def __init__(self, urls: list[str], field: str, per_item: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.urls = urls
        self.field = field
        self.per_item = per_item

    async def start(self) -> AsyncIterator[Any]:
        for first in range(0, len(self.urls), self.per_item):
            yield {self.field: self.urls[first : first + self.per_item]}


def common_settings(job: Job) -> dict[str, Any]:
    return {
        "LOG_LEVEL": "INFO",
        "TELNETCONSOLE_ENABLED": False,
        "ROBOTSTXT_OBEY": False,
        "COOKIES_ENABLED": False,
        "CONCURRENT_REQUESTS": job.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": job.concurrency,
        "DOWNLOAD_DELAY": 0,
        "DOWNLOAD_TIMEOUT": 900,
        "DOWNLOAD_MAXSIZE": NO_LIMIT,
        "DOWNLOAD_WARNSIZE": NO_LIMIT,
        "RETRY_ENABLED": False,
        "LOGSTATS_INTERVAL": 10.0,
        "REMOTE_CONTROL_ENABLED": False,
    }


def _crawl(
    job: Job,
    meter: Meter,
    settings: dict[str, Any],
    field: str,
    on_item: Callable[[dict[str, Any], Meter], None],
) -> None:
    urls = job.urls()
    process = AsyncCrawlerProcess(settings)
    crawler = process.create_crawler(BenchSpider)
    items_left = -(-len(urls) // job.urls_per_item)
    closing: list[asyncio.Task[None]] = []

    def item_done() -> None:
        nonlocal items_left
        items_left -= 1
        if items_left == 0:
            closing.append(asyncio.ensure_future(_close_when_idle(crawler)))

    def item_scraped(item: dict[str, Any], **_: Any) -> None:
        on_item(item, meter)
        item_done()

    def item_error(item: dict[str, Any], failure: Any, **_: Any) -> None:
        for url in item.get(field, []):
            meter.record(url, None, "failed", f"item-error: {failure.value!r}")
        item_done()

    def response_received(**_: Any) -> None:
        meter.downloaded()

    lag = LoopLag()
    crawler.signals.connect(lag.start, signal=signals.spider_opened)
    crawler.signals.connect(response_received, signal=signals.response_received)
    crawler.signals.connect(item_scraped, signal=signals.item_scraped)
    crawler.signals.connect(item_error, signal=signals.item_error)
    meter.start()
    process.crawl(crawler, urls=urls, field=field, per_item=job.urls_per_item)
    process.start()
    meter.stop()
    assert crawler.stats is not None
    meter.outcome.stats = {
        key: value
        for key, value in crawler.stats.get_stats().items()
        if key.startswith(
            ("mediapipe/", "bench/", "downloader/", "item_", "log_count/", "file_", "finish")
        )
    }
    meter.outcome.stats["loop_lag_max_ms"] = lag.stop()


async def _close_when_idle(crawler: Crawler) -> None:
    """Every item is done: close the spider as soon as the engine is idle. Scrapy itself would
    notice the idle crawl only on its next 5 s heartbeat (the measured time ends at the last
    stored file either way; this only shortens the run)."""
    engine = crawler.engine
    while engine is not None and engine.spider is not None:
        if engine.spider_is_idle():
            await engine.close_spider_async(reason="finished")
            return
        await asyncio.sleep(0.05)


def _mediapipe_item(item: dict[str, Any], meter: Meter) -> None:
    for record in item.get("media", []):
        meter.record(
            record["source"], record["path"], record["status"], record["reason"], record["sha256"]
        )


def run_mediapipe(job: Job, meter: Meter) -> None:
    settings = common_settings(job) | {
        "ADDONS": {"mediapipe.Addon": 300},
        "MEDIAPIPE_STORE": job.out_dir,
        "MEDIAPIPE_MAX_SIZE": NO_LIMIT,
        "MEDIAPIPE_ALLOW_PRIVATE_NETWORKS": True,
    }
    if job.s3_settings is not None:
        # MEDIAPIPE_STORE is s3://bucket/prefix/; bodies spool to a local folder of this run.
        settings |= job.s3_settings | {"MEDIAPIPE_TEMP_DIR": job.temp_dir}
    # Extra settings to measure a variant (MEDIAPIPE_DEDUPLICATE off, more writer threads...).
    settings |= json.loads(os.environ.get("BENCH_MEDIAPIPE_SETTINGS") or "{}")
    meter.outcome.source = source_fingerprint()
    _crawl(job, meter, settings, "images", _mediapipe_item)


def _files_item(item: dict[str, Any], meter: Meter) -> None:
    done = {result["url"]: result for result in item.get("files", [])}
    for url in item.get("file_urls", []):
        result = done.get(url)
        if result is None:
            meter.record(url, None, "failed", "not in files")
        else:
            meter.record(url, result["path"], result["status"])


def run_filespipeline(job: Job, meter: Meter) -> None:
    settings = common_settings(job) | {
        "ITEM_PIPELINES": {"scrapy.pipelines.files.FilesPipeline": 300},
        "FILES_STORE": job.out_dir,
    }
    if job.s3_settings is not None:
        settings |= job.s3_settings  # FILES_STORE is s3://bucket/prefix/
    _crawl(job, meter, settings, "file_urls", _files_item)


class DownloaderPipeline:
    """Scrapy's downloader alone: ``engine.download_async(Request(url))`` for every source of
    the item, at most ``CONCURRENT_REQUESTS`` at once (a semaphore: Scrapy 2.19 does not hold
    requests that arrive at a slot together, see bench/README.md), each body hashed and
    compared with the corpus manifest, then dropped. Nothing is stored: the upper bound of a
    media pipeline built on Scrapy."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.concurrency = crawler.settings.getint("CONCURRENT_REQUESTS")
        with open(crawler.settings["BENCH_EXPECTED_FILE"], encoding="utf-8") as expected:
            self.expected: dict[str, str] = json.load(expected)
        self._gate: asyncio.Semaphore | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DownloaderPipeline:
        return cls(crawler)

    async def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        if self._gate is None:  # made on the running loop
            self._gate = asyncio.Semaphore(self.concurrency)
        item["downloads"] = await asyncio.gather(*(self._one(url) for url in item["urls"]))
        return item

    async def _one(self, url: str) -> dict[str, Any]:
        assert self._gate is not None
        assert self.crawler.engine is not None
        async with self._gate:
            try:
                response: Response = await self.crawler.engine.download_async(Request(url))
            except Exception as exc:  # recorded, not raised
                return {"url": url, "status": "failed", "reason": repr(exc)}
        if response.status != 200:
            return {"url": url, "status": "failed", "reason": f"http-{response.status}"}
        digest = hashlib.sha256(response.body).hexdigest()
        if digest != self.expected.get(urlsplit(url).path.lstrip("/")):
            # Recorded as it is: the parent reports the source as mismatched.
            assert self.crawler.stats is not None
            self.crawler.stats.inc_value("bench/sha256_mismatches")
        return {"url": url, "status": "downloaded", "sha256": digest, "size": len(response.body)}


def _downloader_item(item: dict[str, Any], meter: Meter) -> None:
    for result in item.get("downloads", []):
        if result["status"] == "failed":
            meter.record(result["url"], None, "failed", result["reason"])
        else:  # the body is gone; the record names no file
            meter.record(result["url"], MEMORY, "downloaded", None, result["sha256"])


def run_downloader(job: Job, meter: Meter) -> None:
    settings = common_settings(job) | {
        "ITEM_PIPELINES": {"bench.runners.scrapy_runner.DownloaderPipeline": 300},
        "BENCH_EXPECTED_FILE": job.expected_file,
    }
    _crawl(job, meter, settings, "urls", _downloader_item)
