"""A spider for any site's media: one item per page with every media source on it.

``scrapy crawl media -a url=https://example.com/gallery -a depth=1 -O media.jsonl``
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapy import Request, Spider
from scrapy.http import HtmlResponse
from scrapy.linkextractors import LinkExtractor
from w3lib.url import safe_url_string

from mediapipe.spiders.sources import parsed_page, selector_sources

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable, Iterator

    from parsel import Selector
    from scrapy.http import Response

logger = logging.getLogger(__name__)

_DEPTH = re.compile(r"[0-9]+")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class MediaSpider(Spider):
    """Crawls from ``url`` (one URL, or several separated by commas) and follows same-site
    links up to ``depth`` (0: the start pages only). A subclass may set ``start_urls`` and
    ``depth`` instead of taking them as arguments, and extend :meth:`page_item`."""

    name = "media"
    depth: int = 0

    def __init__(
        self, url: str | Iterable[str] | None = None, depth: int | str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        try:
            self.start_urls = start_urls_from(self.start_urls if url is None else url)
            self.depth = depth_from(self.depth if depth is None else depth)
        except ValueError as error:
            # Scrapy shows an exception raised here only as a traceback; this line comes first.
            logger.error("%s", error)
            raise
        self.link_extractor = LinkExtractor(allow_domains=site_hosts(self.start_urls))

    async def start(self) -> AsyncIterator[Request]:
        for url in self.start_urls:
            # Filtered as any request (unlike Scrapy's default start requests), so that a link
            # back to a start page does not visit it again.
            yield Request(url, callback=self.parse)

    def parse(self, response: Response, **kwargs: Any) -> Iterator[Any]:
        if not isinstance(response, HtmlResponse):
            content_type = (response.headers.get("Content-Type") or b"").decode("latin-1")
            logger.warning(
                "media spider: %s is not an HTML page (Content-Type: %s); nothing taken from it",
                response.url,
                content_type or "none",
            )
            return
        yield self.page_item(response)
        if response.meta.get("depth", 0) < self.depth:
            yield from self.follow_links(response)

    def page_item(self, response: HtmlResponse) -> dict[str, Any]:
        """The item of one page: ``page``, ``title``, ``images``, ``alt`` (aligned with
        ``images``) and ``tags`` (the title, then the keywords)."""
        page, base_url = parsed_page(response)
        sources = selector_sources(page, base_url)
        title = page_title(page)
        return {
            "page": response.url,
            "title": title,
            "images": [source.url for source in sources],
            "alt": [source.alt for source in sources],
            "tags": ([title] if title else []) + page_keywords(page),
        }

    def follow_links(self, response: HtmlResponse) -> list[Request]:
        """Requests for the page's same-site links (``a`` and ``area``)."""
        try:
            links = self.link_extractor.extract_links(response)
        except ValueError as error:  # a <base href> that Scrapy cannot join links to
            logger.warning("media spider: links of %s not followed: %s", response.url, error)
            return []
        return list(response.follow_all(links, callback=self.parse))


def start_urls_from(value: str | Iterable[str]) -> list[str]:
    """The start URLs of ``-a url=…``: comma-separated, each an http(s) URL with a host."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    urls = [part.strip() for part in parts if part.strip()]
    if not urls:
        raise ValueError(
            "media spider: no start URL; give one with -a url=https://example.com/ "
            "(several: separated by commas)"
        )
    for url in urls:
        try:
            parts_of_url = urlsplit(url)
            valid = parts_of_url.scheme in _DEFAULT_PORTS and bool(parts_of_url.hostname)
            parts_of_url.port  # noqa: B018 - raises ValueError for a port that is no number
        except ValueError:
            valid = False
        if not valid:
            raise ValueError(f"media spider: url must be an http:// or https:// URL, got {url!r}")
    return urls


def depth_from(value: int | str) -> int:
    """``-a depth=…``: a whole number, 0 or more."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and _DEPTH.fullmatch(value.strip()):
        return int(value)
    raise ValueError(f"media spider: depth must be a whole number, 0 or more, got {value!r}")


def site_hosts(urls: Iterable[str]) -> list[str]:
    """The hosts whose pages (and subdomains' pages) are followed, as Scrapy's link extractor
    compares them: host and port as the link's URL spells them (IDNA-encoded, no default
    port), so a start URL's port other than the default must match the links' port."""
    return sorted({_site_host(url) for url in urls})


def _site_host(url: str) -> str:
    parts = urlsplit(safe_url_string(url))
    host = parts.netloc.rpartition("@")[2].lower()
    if parts.port is not None and parts.port == _DEFAULT_PORTS.get(parts.scheme):
        host = host.rpartition(":")[0]
    return host


def page_title(page: Selector) -> str | None:
    """The page's ``<title>``, whitespace collapsed (an inline SVG's title does not count)."""
    title = page.xpath("string((//title[not(ancestor::svg)])[1])").get("")
    return " ".join(title.split()) or None


def page_keywords(page: Selector) -> list[str]:
    """The comma-separated words of ``<meta name="keywords">``."""
    for meta in page.xpath("//meta[@name][@content]"):
        if meta.attrib["name"].strip().lower() == "keywords":
            words = (" ".join(word.split()) for word in meta.attrib["content"].split(","))
            return [word for word in words if word]
    return []
