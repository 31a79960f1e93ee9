"""The media spider (mediapipe.spiders.MediaSpider): real crawls of a small site on 127.0.0.1
with the add-on on, in process and as ``scrapy crawl media`` in the example project."""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
import pytest_twisted
from scrapy import signals
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from mediapipe.spiders import MediaSpider
from spiders.site_server import Route, SiteHandler, SiteServer
from tests import media
from tests.mockserver import body
from tests.scripts import scrapy

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Iterator
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler

REPO = Path(__file__).resolve().parents[1]

# The site's host names, all served by one loopback server through LoopbackRouter.
HOME = "http://gallery.test"
SUBDOMAIN = "http://photos.gallery.test"
CDN = "http://cdn.test"
AWAY = "http://elsewhere.test"

GIF_PLACEHOLDER = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
INLINE_PNG = media.image_bytes("PNG", (2, 2), "blue")
INLINE = "data:image/png;base64," + base64.b64encode(INLINE_PNG).decode()

# path -> (bytes, Content-Type); every host serves the same paths.
MEDIA: dict[str, tuple[bytes, str]] = {
    "/media/cover.jpg": (media.image_bytes("JPEG", (12, 8), "navy"), "image/jpeg"),
    "/media/small.png": (media.image_bytes("PNG", (4, 4), "red"), "image/png"),
    "/media/large.png": (media.image_bytes("PNG", (16, 12), "orange"), "image/png"),
    "/media/lazy.gif": (media.GIF, "image/gif"),
    "/media/pic-1x.jpg": (media.image_bytes("JPEG", (5, 5), "gray"), "image/jpeg"),
    "/media/pic.webp": (media.WEBP, "image/webp"),
    "/media/clip.mp4": (media.MP4, "video/mp4"),
    "/media/poster.jpg": (media.image_bytes("JPEG", (9, 6), "teal"), "image/jpeg"),
    "/media/beep.wav": (media.WAV, "audio/wav"),
    "/img/cdn.png": (media.image_bytes("PNG", (6, 6), "green"), "image/png"),
    "/media/bg.png": (media.image_bytes("PNG", (3, 3), "purple"), "image/png"),
    "/media/linked.png": (media.image_bytes("PNG", (7, 3), "pink"), "image/png"),
    "/media/ld1.png": (media.image_bytes("PNG", (5, 2), "olive"), "image/png"),
    "/media/ld2.jpg": (media.image_bytes("JPEG", (4, 9), "maroon"), "image/jpeg"),
    "/media/sub.jpg": (media.image_bytes("JPEG", (8, 8), "white"), "image/jpeg"),
    "/media/protected.jpg": (media.image_bytes("JPEG", (3, 7), "silver"), "image/jpeg"),
    "/media/third.png": (media.image_bytes("PNG", (1, 9), "black"), "image/png"),
}


@dataclass(frozen=True)
class Site:
    """The test site: its pages link each other, a subdomain, an off-site host and a CDN."""

    home: str
    subdomain: str
    cdn: str
    away: str

    def pages(self) -> dict[str, bytes]:
        index = f"""<!doctype html><html><head>
          <title>Gallery —
            été</title>
          <meta name="keywords" content="cats, , dogs ,">
          <meta property="og:image" content="/media/cover.jpg">
        </head><body>
          <img src="/media/small.png" srcset="/media/small.png 100w, /media/large.png 800w"
               alt="A large cat">
          <img src="{GIF_PLACEHOLDER}" data-src="/media/lazy.gif" title="Lazy dog">
          <picture>
            <source srcset="/media/pic.webp 2x" type="image/webp">
            <img src="/media/pic-1x.jpg" alt="Picture">
          </picture>
          <figure><video src="/media/clip.mp4" poster="/media/poster.jpg"></video>
            <figcaption>A clip</figcaption></figure>
          <audio controls><source src="/media/beep.wav" type="audio/wav"></audio>
          <img src="{self.cdn}/img/cdn.png" alt="From the CDN">
          <img src="{INLINE}" alt="Inline">
          <img src="/media/cover.jpg" alt="The cover">
          <div style="background-image: url('/media/bg.png')"></div>
          <a href="/second.html">second</a>
          <a href="{self.subdomain}/sub.html">photos</a>
          <a href="{self.away}/away.html">away</a>
          <a href="/media/large.png">full size</a>
          <a href="/not-html">raw</a>
        </body></html>"""
        second = """<html><head><title>Second page</title>
          <link rel="image_src" href="/media/linked.png">
          <script type="application/ld+json">{"@graph": [{"@type": "Product",
            "url": "/second.html", "image": ["/media/ld1.png",
            {"@type": "ImageObject", "contentUrl": "/media/ld2.jpg"}]}]}</script>
          <script type="application/ld+json">{"image": broken</script>
        </head><body><p>caf\udcff
          <img src="/media/large.png" alt="The same cat">
          <a href="/">home</a> <a href="/third.html">third</a>
        </body></html>"""
        sub = """<html><head><title>Photos</title></head><body>
          <img src="/media/sub.jpg" alt="On a subdomain"><img src="/media/protected.jpg">
          <a href="/third.html">third</a>
        </body></html>"""
        third = '<html><body><img src="/media/third.png"></body></html>'
        away = '<html><body><img src="/media/third.png"></body></html>'
        return {
            "/": index.encode(),
            # A byte that is not UTF-8, in a page declared UTF-8.
            "/second.html": second.encode("utf-8", "surrogateescape"),
            "/sub.html": sub.encode(),
            "/third.html": third.encode(),
            "/away.html": away.encode(),
        }

    def routes(self) -> dict[str, Route]:
        routes = {
            path: body(html, "text/html; charset=utf-8") for path, html in self.pages().items()
        }
        routes.update({path: body(data, kind) for path, (data, kind) in MEDIA.items()})
        routes["/not-html"] = body(MEDIA["/media/small.png"][0], "image/png")
        routes["/media/protected.jpg"] = hotlink_protected(
            MEDIA["/media/protected.jpg"][0], f"{self.subdomain}/sub.html"
        )
        return routes

    def expected(self) -> dict[str, dict[str, Any]]:
        """page -> the spider's item before the pipeline: title, sources, alt, tags."""
        home = self.home
        return {
            f"{home}/": page(
                "Gallery — été",
                [
                    (f"{home}/media/cover.jpg", "The cover"),
                    (f"{home}/media/large.png", "A large cat"),
                    (f"{home}/media/lazy.gif", "Lazy dog"),
                    (f"{home}/media/pic.webp", "Picture"),
                    (f"{home}/media/clip.mp4", "A clip"),
                    (f"{home}/media/poster.jpg", "A clip"),
                    (f"{home}/media/beep.wav", None),
                    (f"{self.cdn}/img/cdn.png", "From the CDN"),
                    (INLINE, "Inline"),
                    (f"{home}/media/bg.png", None),
                ],
                ["Gallery — été", "cats", "dogs"],
            ),
            f"{home}/second.html": page(
                "Second page",
                [
                    (f"{home}/media/linked.png", None),
                    (f"{home}/media/ld1.png", None),
                    (f"{home}/media/ld2.jpg", None),
                    (f"{home}/media/large.png", "The same cat"),
                ],
                ["Second page"],
            ),
            f"{self.subdomain}/sub.html": page(
                "Photos",
                [
                    (f"{self.subdomain}/media/sub.jpg", "On a subdomain"),
                    (f"{self.subdomain}/media/protected.jpg", None),
                ],
                ["Photos"],
            ),
            f"{home}/third.html": page(None, [(f"{home}/media/third.png", None)], []),
            f"{self.subdomain}/third.html": page(
                None, [(f"{self.subdomain}/media/third.png", None)], []
            ),
        }


def hotlink_protected(payload: bytes, page: str) -> Route:
    """A 403 unless the request says it comes from ``page``, as hotlink-protected hosts do."""

    def route(handler: SiteHandler) -> None:
        if handler.headers.get("Referer") == page:
            handler.send_body(200, payload, "image/jpeg")
        else:
            handler.send_body(403, b"no hotlinking", "text/plain")

    return route


def page(
    title: str | None, sources: list[tuple[str, str | None]], tags: list[str]
) -> dict[str, Any]:
    return {
        "title": title,
        "sources": [url for url, _ in sources],
        "alt": [alt for _, alt in sources],
        "tags": tags,
    }


def media_bytes(source: str) -> bytes:
    if source == INLINE:
        return INLINE_PNG
    return MEDIA[urlsplit(source).path][0]


class LoopbackRouter:
    """Sends requests for every ``.test`` host to the site server, as an HTTP proxy would."""

    def __init__(self, crawler: Crawler) -> None:
        self.proxy = crawler.settings["TEST_SITE_PROXY"]

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        if (urlsplit(request.url).hostname or "").endswith(".test"):
            request.meta["proxy"] = self.proxy


@pytest.fixture
def site_server(tmp_path: Path) -> Iterator[SiteServer]:
    empty = tmp_path / "no-files"
    empty.mkdir()
    with SiteServer(empty, Site(HOME, SUBDOMAIN, CDN, AWAY).routes()) as running:
        yield running


@dataclass
class Crawled:
    items: list[dict[str, Any]]
    stats: dict[str, Any]
    requested: list[str]
    warnings: list[str]

    def by_page(self) -> dict[str, dict[str, Any]]:
        pages = {item["page"]: item for item in self.items}
        assert len(pages) == len(self.items)
        return pages


async def crawl_site(
    server: SiteServer,
    store: Path,
    caplog: pytest.LogCaptureFixture,
    settings: dict[str, Any] | None = None,
    **arguments: Any,
) -> Crawled:
    crawler = get_crawler(
        MediaSpider,
        {
            "ADDONS": {"mediapipe.Addon": 300},
            "MEDIAPIPE_STORE": str(store),
            "MEDIAPIPE_ALLOW_PRIVATE_NETWORKS": True,
            "DOWNLOADER_MIDDLEWARES": {f"{__name__}.LoopbackRouter": 100},
            "TEST_SITE_PROXY": server.url,
            "DOWNLOAD_TIMEOUT": 10,
            "RETRY_ENABLED": False,
            "MEDIAPIPE_RETRY_TIMES": 0,
            **(settings or {}),
        },
    )
    items: list[dict[str, Any]] = []

    def collect(item: dict[str, Any]) -> None:
        items.append(item)

    crawler.signals.connect(collect, signal=signals.item_scraped)
    with caplog.at_level(logging.INFO):
        await crawler.crawl(**arguments)
    assert crawler.stats is not None
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    return Crawled(items, crawler.stats.get_stats(), list(server.requested), warnings)


def assert_item(item: dict[str, Any], expected: dict[str, Any], store: Path) -> None:
    """The spider's fields as expected, and every source stored with the site's bytes."""
    assert set(item) == {"page", "title", "images", "alt", "tags", "media"}
    assert {key: item[key] for key in ("title", "alt", "tags")} == {
        key: expected[key] for key in ("title", "alt", "tags")
    }
    records = item["media"]
    assert [record["source"] for record in records] == expected["sources"]
    for record in records:
        status = "data" if record["source"].startswith("data:") else "downloaded"
        assert (record["status"], record["reason"]) == (status, None), record
        assert (store / record["path"]).read_bytes() == media_bytes(record["source"])
    assert item["images"] == [record["url"] for record in records]
    assert all(url.startswith("/media/") for url in item["images"])


def index_media_paths() -> list[str]:
    return [
        "/media/cover.jpg",
        "/media/large.png",
        "/media/lazy.gif",
        "/media/pic.webp",
        "/media/clip.mp4",
        "/media/poster.jpg",
        "/media/beep.wav",
        "/img/cdn.png",
        "/media/bg.png",
    ]


# -- crawls ---------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_depth_0_takes_the_start_page_only(
    site_server: SiteServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = tmp_path / "store"
    crawled = await crawl_site(site_server, store, caplog, url=f"{HOME}/")
    expected = Site(HOME, SUBDOMAIN, CDN, AWAY).expected()
    assert list(crawled.by_page()) == [f"{HOME}/"]
    assert_item(crawled.items[0], expected[f"{HOME}/"], store)
    assert sorted(crawled.requested) == sorted(["/", *index_media_paths()])
    assert crawled.warnings == []
    assert crawled.stats["mediapipe/status/downloaded"] == 9
    assert crawled.stats["mediapipe/status/data"] == 1


@pytest_twisted.ensureDeferred
async def test_depth_1_follows_same_site_links_once(
    site_server: SiteServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = tmp_path / "store"
    crawled = await crawl_site(site_server, store, caplog, url=f"{HOME}/", depth="1")
    expected = Site(HOME, SUBDOMAIN, CDN, AWAY).expected()
    pages = crawled.by_page()
    assert sorted(pages) == [f"{HOME}/", f"{HOME}/second.html", f"{SUBDOMAIN}/sub.html"]
    # All stored, protected.jpg too: it answers 403 unless the Referer is its page, which the
    # add-on takes from the item's `page`.
    for url, item in pages.items():
        assert_item(item, expected[url], store)
    # The pages: the start page and those it links to on its host or a subdomain; not the
    # off-site page, not a page two links away, not the link to an image file.
    requested_pages = [
        path for path in crawled.requested if not path.startswith(("/media/", "/img/"))
    ]
    assert sorted(requested_pages) == ["/", "/not-html", "/second.html", "/sub.html"]
    # Each source once, though large.png is on two pages and linked to as well.
    media_paths = [path for path in crawled.requested if path.startswith(("/media/", "/img/"))]
    assert sorted(media_paths) == sorted(
        [
            *index_media_paths(),
            "/media/linked.png",
            "/media/ld1.png",
            "/media/ld2.jpg",
            "/media/sub.jpg",
            "/media/protected.jpg",
        ]
    )
    assert crawled.warnings == [
        f"media spider: {HOME}/not-html is not an HTML page (Content-Type: image/png); "
        "nothing taken from it"
    ]
    assert crawled.stats["item_scraped_count"] == 3
    assert [name for name in crawled.stats if name.startswith("mediapipe/failed")] == []
    # The same source on two pages has one record and one file.
    large = [
        r for item in crawled.items for r in item["media"] if r["source"].endswith("large.png")
    ]
    assert len(large) == 2
    assert large[0] == large[1]


@pytest_twisted.ensureDeferred
async def test_depth_2_visits_each_page_once(
    site_server: SiteServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = tmp_path / "store"
    crawled = await crawl_site(site_server, store, caplog, url=f"{HOME}/", depth=2)
    expected = Site(HOME, SUBDOMAIN, CDN, AWAY).expected()
    pages = crawled.by_page()  # asserts one item per page: the link back home is not followed
    assert sorted(pages) == sorted(expected)
    for url, item in pages.items():
        assert_item(item, expected[url], store)
    assert crawled.requested.count("/") == 1
    # The same path on two hosts: two pages, two sources.
    assert crawled.requested.count("/third.html") == 2
    assert crawled.requested.count("/media/third.png") == 2
    assert "/away.html" not in crawled.requested


@pytest_twisted.ensureDeferred
async def test_several_start_urls(
    site_server: SiteServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = tmp_path / "store"
    crawled = await crawl_site(
        site_server, store, caplog, url=f" {SUBDOMAIN}/sub.html , {HOME}/second.html,"
    )
    expected = Site(HOME, SUBDOMAIN, CDN, AWAY).expected()
    pages = crawled.by_page()
    assert sorted(pages) == sorted([f"{SUBDOMAIN}/sub.html", f"{HOME}/second.html"])
    for url, item in pages.items():
        assert_item(item, expected[url], store)


@pytest_twisted.ensureDeferred
async def test_robots_txt_is_obeyed_when_the_project_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    routes = Site(HOME, SUBDOMAIN, CDN, AWAY).routes()
    routes["/robots.txt"] = body(b"User-agent: *\nDisallow: /second.html\n", "text/plain")
    empty = tmp_path / "no-files"
    empty.mkdir()
    with SiteServer(empty, routes) as server:
        crawled = await crawl_site(
            server,
            tmp_path / "store",
            caplog,
            {"ROBOTSTXT_OBEY": True},
            url=f"{HOME}/",
            depth=1,
        )
    assert sorted(crawled.by_page()) == [f"{HOME}/", f"{SUBDOMAIN}/sub.html"]
    assert "/second.html" not in crawled.requested
    assert crawled.stats["robotstxt/forbidden"] == 1


@pytest_twisted.ensureDeferred
async def test_a_start_url_that_is_not_html_yields_nothing(
    site_server: SiteServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    crawled = await crawl_site(
        site_server, tmp_path / "store", caplog, url=f"{HOME}/media/cover.jpg", depth="2"
    )
    assert crawled.items == []
    assert crawled.requested == ["/media/cover.jpg"]
    assert crawled.warnings == [
        f"media spider: {HOME}/media/cover.jpg is not an HTML page (Content-Type: image/jpeg); "
        "nothing taken from it"
    ]
    assert crawled.stats["finish_reason"] == "finished"
    assert "log_count/ERROR" not in crawled.stats


# -- arguments ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "media spider: no start URL; give one with -a url=https://example.com/ "),
        ({"url": " , "}, "media spider: no start URL"),
        ({"url": "example.com/gallery"}, "media spider: url must be an http:// or https:// URL"),
        ({"url": "ftp://example.com/"}, "got 'ftp://example.com/'"),
        ({"url": "https://"}, "got 'https://'"),
        ({"url": "http://[::1/"}, "got 'http://[::1/'"),
        ({"url": "http://a.test:port/"}, "got 'http://a.test:port/'"),
        ({"url": "https://a.test/,javascript:x"}, "got 'javascript:x'"),
        ({"url": "https://a.test/", "depth": "-1"}, "media spider: depth must be a whole number"),
        ({"url": "https://a.test/", "depth": "one"}, "0 or more, got 'one'"),
        ({"url": "https://a.test/", "depth": "1.5"}, "got '1.5'"),
        ({"url": "https://a.test/", "depth": ""}, "got ''"),
        ({"url": "https://a.test/", "depth": -1}, "got -1"),
        ({"url": "https://a.test/", "depth": True}, "got True"),
    ],
)
def test_bad_arguments_raise_one_clear_error(
    arguments: dict[str, Any], message: str, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ValueError, match=r"^media spider: ") as raised:
        MediaSpider(**arguments)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        str(raised.value)
    ]


def test_good_arguments() -> None:
    spider = MediaSpider(url="https://a.test/x, https://B.example.com:8080/y ,", depth=" 2 ")
    assert spider.start_urls == ["https://a.test/x", "https://B.example.com:8080/y"]
    assert spider.depth == 2
    assert spider.link_extractor.allow_domains == {"a.test", "b.example.com:8080"}
    assert MediaSpider(url=["https://a.test/"], depth=0).depth == 0
    default_ports = MediaSpider(url="https://a.test:443/, http://b.test:80/, http://c.test:443/")
    assert default_ports.link_extractor.allow_domains == {"a.test", "b.test", "c.test:443"}
    assert MediaSpider(url="https://bücher.example/").link_extractor.allow_domains == {
        "xn--bcher-kva.example"
    }
    assert MediaSpider(url="https://a.test/").depth == 0


def test_a_subclass_may_set_its_start_urls_and_depth() -> None:
    class Gallery(MediaSpider):
        name = "gallery"
        start_urls = ["https://gallery.example.com/"]  # noqa: RUF012 - Scrapy's own attribute
        depth = 3

    spider = Gallery()
    assert (spider.start_urls, spider.depth) == (["https://gallery.example.com/"], 3)
    assert Gallery(url="https://other.example.com/", depth="0").depth == 0


def test_the_item_of_a_page_with_nothing_on_it() -> None:
    response = HtmlResponse(
        "https://a.test/empty",
        body=b"<html><body><svg><title>icon</title></svg><p>text</p></body></html>",
        encoding="utf-8",
    )
    item = MediaSpider(url="https://a.test/").page_item(response)
    assert item == {
        "page": "https://a.test/empty",
        "title": None,
        "images": [],
        "alt": [],
        "tags": [],
    }


def test_a_base_href_that_is_no_url_keeps_the_page_and_skips_its_links(
    caplog: pytest.LogCaptureFixture,
) -> None:
    response = HtmlResponse(
        "https://a.test/dir/page",
        body=(
            b'<html><head><base href="http://[broken/"><title>T</title>'
            b'<meta name="KEYWORDS" content="one,two"></head>'
            b'<body><img src="a.jpg" alt="A"><a href="/next">next</a></body></html>'
        ),
        encoding="utf-8",
    )
    spider = MediaSpider(url="https://a.test/", depth=1)
    assert spider.page_item(response) == {
        "page": "https://a.test/dir/page",
        "title": "T",
        "images": ["https://a.test/dir/a.jpg"],
        "alt": ["A"],
        "tags": ["T", "one", "two"],
    }
    assert spider.follow_links(response) == []
    assert [r.getMessage() for r in caplog.records] == [
        "media spider: links of https://a.test/dir/page not followed: Invalid IPv6 URL"
    ]


# -- the command ----------------------------------------------------------------------------------


def scrapy_crawl(*arguments: str) -> subprocess.CompletedProcess[str]:
    """``scrapy crawl media …`` in the example project, as a user runs it from the checkout."""
    return scrapy(REPO, "crawl", "media", *arguments)


def test_scrapy_crawl_media_writes_the_feed(tmp_path: Path) -> None:
    empty = tmp_path / "no-files"
    empty.mkdir()
    with SiteServer(empty) as server:
        # Served on 127.0.0.1 itself: the CDN is the same host, the subdomain is off-site.
        site = Site(server.url, SUBDOMAIN, server.url, AWAY)
        server.httpd.routes.update(site.routes())
        out, store = tmp_path / "media.jsonl", tmp_path / "store"
        completed = scrapy_crawl(
            "-a",
            f"url={server.url}/",
            "-a",
            "depth=1",
            "-O",
            str(out),
            "-s",
            f"MEDIAPIPE_STORE={store}",
            "-s",
            "MEDIAPIPE_ALLOW_PRIVATE_NETWORKS=True",
        )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "Spider closed (finished)" in completed.stderr
    lines = out.read_text("utf-8").splitlines()
    items = {item["page"]: item for item in map(json.loads, lines)}
    expected = site.expected()
    assert sorted(items) == [f"{server.url}/", f"{server.url}/second.html"]
    for url, item in items.items():
        assert_item(item, expected[url], store)
    warnings = [line for line in completed.stderr.splitlines() if " WARNING: " in line]
    assert len(warnings) == 1
    assert warnings[0].endswith(
        f"media spider: {server.url}/not-html is not an HTML page (Content-Type: image/png); "
        "nothing taken from it"
    )
    assert "/away.html" not in server.requested
    assert "Traceback" not in completed.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((), "media spider: no start URL; give one with -a url=https://example.com/"),
        (("-a", "url=https://a.test/", "-a", "depth=deep"), "media spider: depth must be a"),
    ],
    ids=["no-url", "bad-depth"],
)
def test_scrapy_crawl_media_with_bad_arguments_fails_with_one_clear_line(
    arguments: tuple[str, ...], message: str
) -> None:
    completed = scrapy_crawl(*arguments)
    assert completed.returncode == 1
    errors = [line for line in completed.stderr.splitlines() if "] ERROR: " in line]
    assert errors[0].split("] ERROR: ", 1)[1].startswith(message), completed.stderr
    assert completed.stderr.rstrip().splitlines()[-1].startswith(f"ValueError: {message}")
