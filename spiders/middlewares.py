"""Routes the demo's host name to the site server on 127.0.0.1, as an HTTP proxy would.

Media sources keep one stable address (``http://demo.mediapipe.test/...``) although the server
listens on a new ephemeral port each run, so a second run reuses what the first one stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler

DEMO_HOST = "demo.mediapipe.test"


class DemoSiteRouter:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        address = getattr(self.crawler.spider, "site_address", None)
        if address and urlsplit(request.url).hostname == DEMO_HOST:
            request.meta["proxy"] = address
