"""The offline demo: serves the bundled site on 127.0.0.1 and stores its media."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy import Request, Spider, signals

from spiders.middlewares import DEMO_HOST
from spiders.site_server import SiteServer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from scrapy.http import Response


class DemoSpider(Spider):
    """One item per ``<figure>``: its media source, its tags and its caption as alt text."""

    name = "demo"
    start_url = f"http://{DEMO_HOST}/"

    site_address: str | None = None
    _server: SiteServer | None = None

    async def start(self) -> AsyncIterator[Request]:
        self._server = SiteServer().start()
        self.site_address = self._server.url
        self.crawler.signals.connect(self._stop_server, signal=signals.spider_closed)
        self.logger.info("Demo site served at %s as %s", self.site_address, self.start_url)
        yield Request(self.start_url)

    def _stop_server(self) -> None:
        if self._server is not None:
            self._server.stop()

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Request]:
        pages = [response.urljoin(href) for href in response.css("a::attr(href)").getall()]
        yield from self._next_page(pages)

    def _next_page(self, pages: list[str]) -> Iterator[Request]:
        # One page after the other: a source on two pages is named from its first page's
        # tags and alt, so the page order must not depend on which response comes first.
        if pages:
            yield Request(pages[0], callback=self.parse_page, cb_kwargs={"rest": pages[1:]})

    def parse_page(self, response: Response, rest: list[str]) -> Iterator[Any]:
        for figure in response.css("figure"):
            media = figure.xpath("./img|./audio|./video")
            src = media.attrib.get("src", "")
            local = media.attrib.get("data-local") == "1"
            source = src if local or src.startswith("data:") else response.urljoin(src)
            tags = [tag for tag in (figure.attrib.get("data-tags") or "").split(",") if tag]
            yield {
                "page": response.url,
                "kind": media[0].root.tag if media else None,
                "images": [source],
                "tags": tags,
                "alt": " ".join(figure.css("figcaption ::text").getall()).strip(),
            }
        yield from self._next_page(rest)
