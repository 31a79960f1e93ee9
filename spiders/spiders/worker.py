"""One worker of a crawl shared by several processes: pages come from a redis queue
(scrapy-redis), every page's images go to one bucket, and each image is downloaded by one
worker (``MEDIAPIPE_CLAIMS``). The README's "Several workers" section has the commands.

It follows the links of the site it was started on and yields one item per page with the
page's images, audio and video.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapy import Spider
from scrapy.exceptions import ScrapyDeprecationWarning

try:
    from scrapy_redis.spiders import RedisSpider
except ImportError:  # the demo project runs without scrapy-redis; only this spider needs it

    class RedisSpider(Spider):  # type: ignore[no-redef]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise ModuleNotFoundError(
                "the worker spider needs scrapy-redis: pip install 'scrapy-mediapipe[workers]'"
            )


# scrapy-redis 0.9.1 (its latest release) still passes the spider to the stats collector, once
# per request it schedules; the behaviour is unchanged, only the call is old.
warnings.filterwarnings(
    "ignore",
    message="Passing a 'spider' argument to StatsCollector",
    category=ScrapyDeprecationWarning,
    module=r"scrapy_redis\.",
)
# ... and logs "Resuming crawl" through Spider.log() when it opens on a queue that holds requests.
warnings.filterwarnings(
    "ignore",
    message=r"Spider\.log\(\) is deprecated",
    category=ScrapyDeprecationWarning,
    module=r"scrapy_redis\.",
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from scrapy.http import Response

MEDIA = "img[src], audio[src], video[src], source[src]"


class WorkerSpider(RedisSpider):
    name = "worker"
    # Start URLs are pushed here, as JSON: redis-cli lpush worker:start_urls '{"url": "..."}'
    # (a bare URL works too, with a warning of scrapy-redis)
    redis_key = "worker:start_urls"
    custom_settings = {  # noqa: RUF012 - Scrapy's own class attribute
        "SCHEDULER": "scrapy_redis.scheduler.Scheduler",
        "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
        # Without it the first worker to finish empties the shared queue and the seen-pages
        # set under the others' feet.
        "SCHEDULER_PERSIST": True,
        "MEDIAPIPE_CLAIMS": True,
    }

    async def start(self) -> AsyncIterator[Any]:
        # scrapy-redis feeds its queue from start_requests(), which Scrapy no longer calls:
        # without this the first pages wait for the first idle signal.
        for request in self.next_requests():
            yield request

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        alts: dict[str, str] = {}
        for element in response.css(MEDIA):
            source = response.urljoin(element.attrib["src"])
            alts.setdefault(source, element.attrib.get("alt", "").strip())
        if alts:
            yield self.page_item(response, alts)
        host = urlsplit(response.url).netloc
        for href in response.css("a::attr(href)").getall():
            url = response.urljoin(href)
            if urlsplit(url).netloc == host:
                yield response.follow(url)

    def page_item(self, response: Response, alts: dict[str, str]) -> dict[str, Any]:
        """The item of a page: its media sources in page order, with their alt texts."""
        return {"page": response.url, "images": list(alts), "alt": list(alts.values())}
