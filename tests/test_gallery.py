"""``scrapy media-gallery``: the real command on the feeds and stores of real crawls."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

import pytest
import pytest_twisted
from parsel import Selector

from mediapipe.gallery.feed import Thumbnail
from mediapipe.gallery.page import grid_thumbnail
from tests import media
from tests.s3server import BUCKET
from tests.scripts import scrapy

if TYPE_CHECKING:
    import subprocess

    from tests.conftest import Crawl
    from tests.mockserver import MockServer
    from tests.s3server import S3Server

REPO = Path(__file__).resolve().parents[1]
STORE = "generated_images"
HOSTILE_ALT = '<script>alert("alt")</script> & "quotes" \'too\''
HOSTILE_TAGS = ["<img src=x onerror=alert(1)>", "été"]


# -- running scrapy as a user does ---------------------------------------------------------------


@dataclass
class DemoCrawl:
    """A folder where ``scrapy crawl demo`` ran: its store and its JSON lines and JSON feeds."""

    folder: Path

    @property
    def store(self) -> Path:
        return self.folder / STORE

    def items(self, feed: str = "demo.jsonl") -> list[dict[str, Any]]:
        text = (self.folder / feed).read_text("utf-8")
        if feed.endswith(".json"):
            return list(json.loads(text))
        return [json.loads(line) for line in text.splitlines()]

    def records(self) -> list[dict[str, Any]]:
        return [record for item in self.items() for record in item["media"]]

    def files(self) -> set[str]:
        """Every stored file the feed names, thumbnails included, relative to the store."""
        found = set()
        for record in self.records():
            if record["path"] is not None:
                found.add(record["path"])
            found.update(thumb["path"] for thumb in (record.get("thumbnails") or {}).values())
        return found


def crawl_demo(folder: Path, *settings: str) -> DemoCrawl:
    """The offline demo, once, with both feed formats; ``settings`` as ``-s`` values."""
    options = [option for setting in settings for option in ("-s", setting)]
    done = scrapy(folder, "crawl", "demo", "-O", "demo.jsonl", "-O", "demo.json", *options)
    assert done.returncode == 0, done.stderr[-3000:]
    return DemoCrawl(folder)


@dataclass
class Page:
    """A gallery page, parsed."""

    path: Path
    html: Selector

    @classmethod
    def read(cls, path: Path) -> Page:
        return cls(path, Selector(text=path.read_text("utf-8")))

    def tiles(self) -> list[Selector]:
        return self.html.css("figure.tile")

    def total(self, key: str) -> int:
        return int(self.html.css(f'dd[data-total="{key}"]::text').get("-1"))

    def totals(self) -> dict[str, int]:
        return {
            cell.attrib["data-total"]: int(cell.xpath("string()").get(""))
            for cell in self.html.css("dd[data-total]")
        }

    def media_urls(self) -> list[str]:
        """Every URL the page loads a file from, or links a stored file with."""
        return self.html.css(
            "figure.tile img::attr(src), figure.tile audio::attr(src), "
            "figure.tile video::attr(src), figure.tile a.media::attr(href), "
            "figure.tile a.placeholder::attr(href)"
        ).getall()

    def failed_rows(self) -> list[tuple[str, str]]:
        return [
            (row.css("td.source").xpath("string()").get(""), row.css("td.reason::text").get(""))
            for row in self.html.css("table.failed tbody tr")
        ]


def expected_totals(records: list[dict[str, Any]], items: int) -> dict[str, int]:
    stored = {r["path"]: r["size"] for r in records if r["path"] is not None}
    statuses = Counter(r["status"] for r in records)
    reasons = Counter(r["reason"] for r in records if r["reason"])
    return {
        "items": items,
        "sources": len(records),
        **{f"status/{status}": n for status, n in statuses.items()},
        **{f"reason/{reason}": n for reason, n in reasons.items()},
        "stored-files": len(stored),
        "stored-bytes": sum(stored.values()),
    }


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoCrawl:
    return crawl_demo(tmp_path_factory.mktemp("gallery-demo"))


def write_gallery(
    folder: Path, feed: str, output: str = "gallery.html", *options: str, project: bool = True
) -> tuple[subprocess.CompletedProcess[str], Page | None]:
    done = scrapy(folder, "media-gallery", feed, "-o", output, *options, project=project)
    page = Page.read(folder / output) if done.returncode == 0 else None
    return done, page


# -- the demo's gallery --------------------------------------------------------------------------


@pytest.mark.parametrize("feed", ["demo.jsonl", "demo.json"])
def test_totals_and_tiles_are_the_feeds(demo: DemoCrawl, feed: str) -> None:
    done, page = write_gallery(demo.folder, feed, f"{feed}.html")
    assert done.returncode == 0, done.stderr
    assert page is not None
    assert done.stderr == ""
    assert done.stdout == (
        f"Wrote {feed}.html: 15 items, 15 sources, 11 files stored "
        f"({expected_totals(demo.records(), 15)['stored-bytes']} bytes)\n"
    )
    records = [record for item in demo.items(feed) for record in item["media"]]
    assert page.totals() == expected_totals(records, 15)
    assert page.total("status/failed") == 2
    assert page.total("reason/http-404") == page.total("reason/content-mismatch") == 1
    tiles = page.tiles()
    assert [(t.attrib["data-status"], t.attrib["data-reason"]) for t in tiles] == [
        (r["status"], r["reason"] or "") for r in records
    ]
    kinds = Counter(tile.attrib["data-kind"] for tile in tiles)
    assert kinds == {"image": 7, "audio": 3, "video": 2, "none": 3}
    assert len(page.html.css("figure.tile img")) == 7
    assert len(page.html.css("figure.tile audio[controls]")) == 3
    assert len(page.html.css("figure.tile video[controls]")) == 2
    assert page.html.css("#shown::text").get() == "15"
    for tile, item in zip(tiles, demo.items(feed), strict=True):
        assert tile.css("p.alt::text").get() == item["alt"]
        assert tile.css("ul.tags li::text").getall() == item["tags"]


def test_status_and_reason_filters_list_what_the_feed_has(demo: DemoCrawl) -> None:
    _, page = write_gallery(demo.folder, "demo.jsonl")
    assert page is not None
    buttons = page.html.css("button[data-filter-status]")
    assert [b.attrib["data-filter-status"] for b in buttons] == [
        "",
        "downloaded",
        "data",
        "local",
        "failed",
    ]
    assert [b.xpath("string()").get() for b in buttons] == [
        "all 15",
        "downloaded 11",
        "data 1",
        "local 1",
        "failed 2",
    ]
    options = page.html.css("#reason-filter option")
    assert [o.attrib["value"] for o in options] == ["", "content-mismatch", "http-404"]


def test_failed_sources_are_listed_with_their_reasons(demo: DemoCrawl) -> None:
    _, page = write_gallery(demo.folder, "demo.jsonl")
    assert page is not None
    assert page.failed_rows() == [
        ("http://demo.mediapipe.test/media/not-an-image.png", "content-mismatch"),
        ("http://demo.mediapipe.test/media/missing.jpg", "http-404"),
    ]
    for link in page.html.css("table.failed td.items a::attr(href)").getall():
        tile = page.html.css(f"figure{link}")
        assert tile.attrib["data-status"] == "failed"


def test_relative_urls_lead_to_the_stored_files(demo: DemoCrawl) -> None:
    """From a gallery in another folder, every URL is relative, percent-encoded, and opens the
    stored file (the query the feed's URLs have is not there)."""
    done, page = write_gallery(demo.folder, "demo.jsonl", "pages/of the crawl/gallery.html")
    assert done.returncode == 0, done.stderr
    assert page is not None
    urls = page.media_urls()
    assert len(urls) == 2 * 7 + 3 + 2
    stored = {name: (demo.store / name).read_bytes() for name in demo.files()}
    reached = set()
    for url in urls:
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc, parts.query) == ("", "", ""), url
        assert url.startswith("../../generated_images/"), url
        assert all(c.isascii() and c not in " +,?#" for c in url), url
        target = (page.path.parent / unquote(url)).resolve()
        name = target.relative_to(demo.store.resolve()).as_posix()
        assert target.read_bytes() == stored[name]
        reached.add(name)
    originals = {r["path"] for r in demo.records() if r["path"]}
    assert originals <= reached <= set(stored)


def test_image_tiles_show_a_thumbnail_and_link_the_original(demo: DemoCrawl) -> None:
    _, page = write_gallery(demo.folder, "demo.jsonl")
    assert page is not None
    with_thumbnails = 0
    for tile, record in zip(page.tiles(), demo.records(), strict=True):
        if tile.attrib["data-kind"] != "image":
            continue
        link = unquote(tile.css("a.media::attr(href)").get(""))
        shown = unquote(tile.css("img::attr(src)").get(""))
        assert link == f"{STORE}/{record['path']}"
        thumbnails = tuple(
            Thumbnail(t["path"], t["url"], t["width"], t["height"])
            for t in sorted((record.get("thumbnails") or {}).values(), key=lambda t: t["width"])
        )
        chosen = grid_thumbnail(thumbnails)
        assert shown == f"{STORE}/{chosen.path if chosen else record['path']}"
        if chosen is not None:
            with_thumbnails += 1
            size = (tile.css("img::attr(width)").get(), tile.css("img::attr(height)").get())
            assert size == (str(chosen.width), str(chosen.height))
            assert (demo.folder / shown).is_file()
    # The demo makes thumbnails of its raster images (spiders/settings.py, MEDIAPIPE_THUMBS).
    assert with_thumbnails == 7


def test_media_base_puts_the_files_under_that_address(demo: DemoCrawl) -> None:
    done, page = write_gallery(
        demo.folder, "demo.jsonl", "gallery.html", "--media-base", "https://cdn.example/media/"
    )
    assert done.returncode == 0, done.stderr
    assert page is not None
    paths = demo.files()
    for url in page.media_urls():
        assert url.startswith("https://cdn.example/media/"), url
        assert unquote(url.removeprefix("https://cdn.example/media/")) in paths
    cat = next(r["path"] for r in demo.records() if r["source"].endswith("/cat.jpg"))
    assert f"https://cdn.example/media/{quote(cat, safe='/')}" in page.media_urls()


@pytest.mark.parametrize(
    ("settings", "base"),
    [
        (["AWS_REGION_NAME=eu-west-3"], "https://pictures.s3.eu-west-3.amazonaws.com/crawl/a%2Bb/"),
        ([], "https://pictures.s3.amazonaws.com/crawl/a%2Bb/"),
        (
            ["AWS_ENDPOINT_URL=http://127.0.0.1:9000/"],
            "http://127.0.0.1:9000/pictures/crawl/a%2Bb/",
        ),
    ],
)
def test_a_bucket_store_is_linked_at_its_address(
    demo: DemoCrawl, settings: list[str], base: str
) -> None:
    options = [
        o for s in ["MEDIAPIPE_STORE=s3://pictures/crawl/a+b/", *settings] for o in ("-s", s)
    ]
    done, page = write_gallery(demo.folder, "demo.jsonl", "bucket.html", *options)
    assert done.returncode == 0, done.stderr
    assert page is not None
    urls = page.media_urls()
    assert len(urls) == 19
    for url in urls:
        assert url.startswith(base), url
        assert unquote(url.removeprefix(base)) in demo.files()


def test_a_wrong_store_is_reported(demo: DemoCrawl) -> None:
    done, page = write_gallery(demo.folder, "demo.jsonl", "gallery.html", "-s", "MEDIAPIPE_STORE=x")
    assert done.returncode == 0
    assert page is not None
    assert done.stderr == (
        f"WARNING: {len(demo.files())} files the feed lists are not in the store x: "
        "is MEDIAPIPE_STORE the crawl's?\n"
    )


def test_the_results_field_setting_is_honoured(demo: DemoCrawl, tmp_path: Path) -> None:
    renamed = [
        {("records" if key == "media" else key): value for key, value in item.items()}
        for item in demo.items()
    ]
    feed = demo.folder / "renamed.jsonl"
    feed.write_text("".join(json.dumps(item) + "\n" for item in renamed), "utf-8")
    done, page = write_gallery(
        demo.folder, "renamed.jsonl", "renamed.html", "-s", "MEDIAPIPE_RESULTS_FIELD=records"
    )
    assert done.returncode == 0, done.stderr
    assert page is not None
    assert len(page.tiles()) == 15
    done, page = write_gallery(demo.folder, "renamed.jsonl", "renamed.html")
    assert (done.returncode, page) == (1, None)
    assert done.stderr == (
        "ERROR: no media records in the feed renamed.jsonl: 15 items without a 'media' list "
        "(MEDIAPIPE_RESULTS_FIELD)\n"
    )


def test_the_command_works_outside_a_project(demo: DemoCrawl) -> None:
    listing = scrapy(demo.folder, project=False)
    assert "media-gallery" in listing.stdout
    assert "media-serve" in listing.stdout
    done, page = write_gallery(demo.folder, "demo.jsonl", "outside.html", project=False)
    assert done.returncode == 0, done.stderr
    assert page is not None
    assert len(page.tiles()) == 15


def test_the_page_is_self_contained(demo: DemoCrawl) -> None:
    _, page = write_gallery(demo.folder, "demo.jsonl")
    assert page is not None
    assert page.html.css('meta[name="viewport"]::attr(content)').get() == (
        "width=device-width, initial-scale=1"
    )
    assert len(page.html.css("style")) == len(page.html.css("script")) == 1
    assert page.html.css("script[src], iframe, object, embed, base") == []
    # The one link is the icon, given so that a browser asks no server for /favicon.ico.
    assert page.html.css("link").getall() == ['<link rel="icon" href="data:,">']
    policy = page.html.css('meta[http-equiv="Content-Security-Policy"]::attr(content)').get("")
    assert "script-src 'sha256-" in policy
    assert "default-src 'none'" in policy
    text = page.path.read_text("utf-8")
    assert "http://" not in text.replace("http://demo.mediapipe.test/", "")
    assert "https://" not in text


# -- untrusted feeds -----------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_hostile_text_is_escaped(crawl: Crawl, server: MockServer, tmp_path: Path) -> None:
    failing = f'{server.url}/status/404?q=<b>"x"</b>'
    feed = tmp_path / "hostile.jsonl"
    item = {
        "images": [f"{server.url}/img/png", "javascript:alert(1)", failing],
        "alt": HOSTILE_ALT,
        "tags": HOSTILE_TAGS,
        "page": "javascript:alert(2)",
    }
    await crawl([item], {"FEEDS": {str(feed): {"format": "jsonlines"}}})
    done, page = write_gallery(
        tmp_path, "hostile.jsonl", "gallery.html", "-s", "MEDIAPIPE_STORE=store", project=False
    )
    assert done.returncode == 0, done.stderr
    assert page is not None
    tiles = page.tiles()
    assert [t.attrib["data-status"] for t in tiles] == ["downloaded", "failed", "failed"]
    assert [t.css("p.alt::text").get() for t in tiles] == [HOSTILE_ALT] * 3
    assert [t.css("ul.tags li::text").getall() for t in tiles] == [HOSTILE_TAGS] * 3
    assert tiles[0].css("img::attr(alt)").get() == HOSTILE_ALT
    # The page's own script is the only one; nothing from the feed became markup or a link.
    assert len(page.html.css("script")) == 1
    assert page.html.css("img[onerror], [onclick], [onload]") == []
    assert all(
        href.startswith(("#", "store/", "http://127.0.0.1"))
        for href in page.html.css("a::attr(href)").getall()
    ), page.html.css("a::attr(href)").getall()
    assert page.html.css("p.page") == []
    assert sorted(page.failed_rows()) == sorted(
        [("javascript:alert(1)", "unsupported-url"), (failing, "http-404")]
    )
    assert page.html.css("table.failed code::text").get() == "javascript:alert(1)"


@pytest_twisted.ensureDeferred
async def test_feeds_with_byte_order_marks(
    crawl: Crawl, server: MockServer, tmp_path: Path
) -> None:
    """Scrapy's utf-8-sig encoding puts a byte-order mark before every item."""
    items = [{"images": [f"{server.url}/img/{kind}"], "alt": kind} for kind in ("png", "gif")]
    feeds = {
        str(tmp_path / f"items.{ext}"): {"format": kind, "encoding": "utf-8-sig"}
        for ext, kind in (("jsonl", "jsonlines"), ("json", "json"))
    }
    await crawl(items, {"FEEDS": feeds})
    assert (tmp_path / "items.jsonl").read_bytes().count(b"\xef\xbb\xbf") == 2
    for feed in ("items.jsonl", "items.json"):
        done, page = write_gallery(
            tmp_path, feed, f"{feed}.html", "-s", "MEDIAPIPE_STORE=store", project=False
        )
        assert done.returncode == 0, done.stderr
        assert page is not None
        assert done.stderr == ""
        assert sorted(t.css("p.alt::text").get("") for t in page.tiles()) == ["gif", "png"]


@pytest_twisted.ensureDeferred
async def test_an_s3_store_is_linked_at_its_bucket(
    crawl: Crawl, server: MockServer, s3_server: S3Server, tmp_path: Path
) -> None:
    prefix = f"gallery-{uuid.uuid4().hex[:12]}/"
    store = f"s3://{BUCKET}/{prefix}"
    feed = tmp_path / "s3.jsonl"
    s3_settings = {**s3_server.settings(), "MEDIAPIPE_TEMP_DIR": str(tmp_path / "temp")}
    settings = {"MEDIAPIPE_STORE": store, "FEEDS": {str(feed): {"format": "jsonlines"}}}
    await crawl([{"images": [f"{server.url}/img/png"]}], {**s3_settings, **settings})
    done, page = write_gallery(
        tmp_path,
        "s3.jsonl",
        "gallery.html",
        "-s",
        f"MEDIAPIPE_STORE={store}",
        "-s",
        f"AWS_ENDPOINT_URL={s3_server.endpoint}",
        project=False,
    )
    assert done.returncode == 0, done.stderr
    assert page is not None
    [src] = page.html.css("figure.tile img::attr(src)").getall()
    base = f"{s3_server.endpoint}/{BUCKET}/{prefix}"
    assert src.startswith(base)
    key = prefix + unquote(src.removeprefix(base))
    stored = s3_server.client().get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert stored == media.PNG


def bad_feeds() -> dict[str, tuple[bytes | None, str]]:
    return {
        "missing": (None, "ERROR: cannot read the feed bad: no such file\n"),
        "text": (
            b"hello\nworld\n",
            "ERROR: no media records in the feed bad: 2 lines that are not JSON\n",
        ),
        "binary": (media.PNG, "ERROR: the feed bad is not UTF-8 text (byte 0)\n"),
        "numbers": (
            b"[1, 2, 3]",
            "ERROR: no media records in the feed bad: 3 entries that are not JSON objects\n",
        ),
        "items without records": (
            b'{"images": ["http://a/b.png"]}\n',
            "ERROR: no media records in the feed bad: 1 items without a 'media' list "
            "(MEDIAPIPE_RESULTS_FIELD)\n",
        ),
        "records that are not": (
            b'{"media": [1, {"status": "stolen"}, {"status": "downloaded", "path": "../x"}]}\n',
            "ERROR: no media records in the feed bad: 3 records that are not valid media records\n",
        ),
    }


@pytest.mark.parametrize("case", list(bad_feeds()))
def test_bad_feeds_give_one_error_line(tmp_path: Path, case: str) -> None:
    content, error = bad_feeds()[case]
    if content is not None:
        (tmp_path / "bad").write_bytes(content)
    done, page = write_gallery(tmp_path, "bad", project=False)
    assert (done.returncode, page, done.stdout) == (1, None, "")
    assert done.stderr == error
    assert not (tmp_path / "gallery.html").exists()


def test_a_folder_as_feed_is_one_error_line(tmp_path: Path) -> None:
    (tmp_path / "bad").mkdir()
    done, _ = write_gallery(tmp_path, "bad", project=False)
    assert done.returncode == 1
    assert done.stderr.startswith("ERROR: cannot read the feed bad: ")
    assert done.stderr.count("\n") == 1


def test_bad_lines_are_skipped_and_counted(demo: DemoCrawl) -> None:
    lines = (demo.folder / "demo.jsonl").read_text("utf-8").splitlines()
    lines[3:3] = ["not json", "[1]", '"text"', '{"images": []}', '{"media": [null]}', ""]
    (demo.folder / "mixed.jsonl").write_text("\n".join(lines) + "\n", "utf-8")
    done, page = write_gallery(demo.folder, "mixed.jsonl", "mixed.html")
    assert done.returncode == 0, done.stderr
    assert page is not None
    assert done.stderr == (
        "WARNING: skipped 1 lines that are not JSON, 2 entries that are not JSON objects, "
        "1 items without a 'media' list (MEDIAPIPE_RESULTS_FIELD), 1 records that are not "
        "valid media records of mixed.jsonl\n"
    )
    assert page.html.css("p.skipped::attr(data-skipped)").get() == "5"
    assert len(page.tiles()) == 15
    # The item with no valid record still counts as an item.
    assert page.total("items") == 16


def test_a_cut_json_feed_shows_what_it_has(demo: DemoCrawl) -> None:
    """A crawl killed while it writes a JSON feed leaves it without its closing bracket."""
    text = (demo.folder / "demo.json").read_text("utf-8")
    cut = text[: text.rindex("\n{") + 20]  # the last item half-written, no "]"
    (demo.folder / "cut.json").write_text(cut, "utf-8")
    done, page = write_gallery(demo.folder, "cut.json", "cut.html")
    assert done.returncode == 0, done.stderr
    assert page is not None
    assert len(page.tiles()) == 14
    assert done.stderr == "WARNING: skipped 1 lines that are not JSON of cut.json\n"


def test_an_empty_feed_is_an_empty_gallery(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_bytes(b"")
    done, page = write_gallery(tmp_path, "empty.jsonl", project=False)
    assert done.returncode == 0, done.stderr
    assert page is not None
    assert page.tiles() == []
    assert page.total("items") == page.total("sources") == 0


def test_usage_errors(tmp_path: Path) -> None:
    done = scrapy(tmp_path, "media-gallery", project=False)
    assert done.returncode == 2
    assert "give one feed" in done.stderr
    (tmp_path / "feed.jsonl").write_bytes(b"")
    done = scrapy(tmp_path, "media-gallery", "feed.jsonl", "-o", "feed.jsonl", project=False)
    assert (done.returncode, done.stderr) == (
        1,
        "ERROR: the gallery would overwrite its feed feed.jsonl: choose another -o\n",
    )
    done = scrapy(
        tmp_path, "media-gallery", "feed.jsonl", "-s", "MEDIAPIPE_URL_PREFIX=", project=False
    )
    assert (done.returncode, done.stderr) == (
        1,
        "ERROR: MEDIAPIPE_URL_PREFIX must be a non-empty string, got ''\n",
    )
    done = scrapy(
        tmp_path, "media-gallery", "feed.jsonl", "-s", "MEDIAPIPE_STORE=gs://b/p/", project=False
    )
    assert (done.returncode, done.stderr) == (
        1,
        "ERROR: MEDIAPIPE_STORE = 'gs://b/p/': give the address that serves it with "
        "--media-base URL\n",
    )
    done = scrapy(
        tmp_path, "media-gallery", "feed.jsonl", "--media-base", "javascript:x", project=False
    )
    assert (done.returncode, done.stderr) == (
        1,
        "ERROR: --media-base must be an http(s) or file URL, got 'javascript:x'\n",
    )


# -- which thumbnail ------------------------------------------------------------------------------


def thumbs(*widths: int) -> tuple[Thumbnail, ...]:
    return tuple(Thumbnail(f"thumbnails/w{w}/a.webp", None, w, w) for w in widths)


@pytest.mark.parametrize(
    ("widths", "chosen"),
    [
        ((), None),
        ((100,), 100),
        ((100, 200), 200),
        ((100, 300, 600), 300),
        ((100, 450, 1200), 450),
        ((640,), 640),
    ],
)
def test_the_grid_takes_the_smallest_thumbnail_that_fills_it(
    widths: tuple[int, ...], chosen: int | None
) -> None:
    picked = grid_thumbnail(thumbs(*widths))
    assert (picked.width if picked else None) == chosen
