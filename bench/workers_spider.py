"""The comparison worker of ``python -m bench.workers``: the example worker spider's crawl
(scrapy-redis queue, the same pages and links), but its items carry ``file_urls`` for Scrapy's
own ``FilesPipeline``, and the mediapipe add-on is off.

Loaded with ``-s SPIDER_MODULES=bench.workers_spider``; run as ``scrapy crawl files_worker``.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapy.exceptions import ScrapyDeprecationWarning
from scrapy_redis.spiders import RedisSpider

from spiders.spiders.worker import MEDIA

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from scrapy.http import Response

# As in spiders/spiders/worker.py: scrapy-redis 0.9.1's one deprecated call per request.
warnings.filterwarnings(
    "ignore",
    message="Passing a 'spider' argument to StatsCollector",
    category=ScrapyDeprecationWarning,
    module=r"scrapy_redis\.",
)


class FilesWorkerSpider(RedisSpider):
    name = "files_worker"
    redis_key = "files_worker:start_urls"
    custom_settings = {  # noqa: RUF012 - Scrapy's own class attribute
        "SCHEDULER": "scrapy_redis.scheduler.Scheduler",
        "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
        "SCHEDULER_PERSIST": True,
        # The project's settings enable mediapipe.Addon; this worker runs without it.
        "ADDONS": {},
        "ITEM_PIPELINES": {"scrapy.pipelines.files.FilesPipeline": 1},
    }

    async def start(self) -> AsyncIterator[Any]:
        for request in self.next_requests():
            yield request

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        sources: list[str] = []
        for element in response.css(MEDIA):
            source = response.urljoin(element.attrib["src"])
            if source not in sources:
                sources.append(source)
        if sources:
            yield {"page": response.url, "file_urls": sources}
        host = urlsplit(response.url).netloc
        for href in response.css("a::attr(href)").getall():
            url = response.urljoin(href)
            if urlsplit(url).netloc == host:
                yield response.follow(url)
