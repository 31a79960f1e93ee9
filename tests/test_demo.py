"""The offline demo, run twice as a user runs it: ``scrapy crawl demo -O demo.jsonl``.

The first run stores the bundled site's media; the second one finds them in the store.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urljoin

import pytest
from parsel import Selector
from PIL import Image

from spiders.site_server import SITE_LAST_MODIFIED
from tests.scripts import scrapy

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parents[1]
SITE = REPO / "spiders" / "site"
SITE_MEDIA = SITE / "media"
DEMO = "http://demo.mediapipe.test"
PAGES = ("gallery.html", "sounds.html")
STORE = "generated_images"
META = ".mediapipe"


def h16(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


# -- what the site holds -------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One ``<figure>`` of the bundled site, as the demo spider should turn it into an item."""

    page: str
    kind: str
    src: str
    local: bool
    tags: tuple[str, ...]
    alt: str

    @property
    def source(self) -> str:
        """What the spider puts into ``images``."""
        if self.local or self.src.startswith("data:"):
            return self.src
        return urljoin(self.page, self.src)

    @property
    def key(self) -> str:
        return "data:" if self.src.startswith("data:") else self.src


def site_figures() -> list[Figure]:
    figures = []
    for page in PAGES:
        html = Selector(text=(SITE / page).read_text("utf-8"))
        for figure in html.css("figure"):
            element = figure.xpath("./img|./audio|./video")
            figures.append(
                Figure(
                    page=f"{DEMO}/{page}",
                    kind=element.xpath("name()").get(""),
                    src=element.attrib["src"],
                    local=element.attrib.get("data-local") == "1",
                    tags=tuple(t for t in (figure.attrib.get("data-tags") or "").split(",") if t),
                    alt=figure.xpath("string(figcaption)").get("").strip(),
                )
            )
    return figures


@dataclass(frozen=True)
class Expected:
    status: str
    reason: str | None = None
    mime: str | None = None
    ext: str | None = None
    label: str | None = None  # the file name's label, from the first page that shows the source


def downloaded(mime: str, ext: str, label: str) -> Expected:
    return Expected("downloaded", None, mime, ext, label)


# src (as written in the site's HTML) -> what run 1 must make of it.
EXPECTED: dict[str, Expected] = {
    "/media/cat.jpg": downloaded("image/jpeg", ".jpg", "chat+été+mignon+Chat_mignon_été"),
    "/media/square.png": downloaded("image/png", ".png", "rouge+四角+квадрат+Carré_rouge_赤い四角"),
    "/media/spinner.gif": downloaded(
        "image/gif", ".gif", "анимация+gif+くるくる+Вращение_анимация"
    ),
    "/media/leaf.webp": downloaded("image/webp", ".webp", "feuille+葉+лист+Feuille_d_automne"),
    "/media/photo-raw": downloaded(
        "image/jpeg", ".jpg", "写真+sans-extension+写真_拡張子なし_coucher_de_soleil"
    ),
    "/media/chime.ogg": downloaded("audio/ogg", ".ogg", "son+звон+chime+Carillon_été"),
    "/media/chime.mp3": downloaded("audio/mpeg", ".mp3", "音+mp3+チャイム_MP3"),
    "/media/beep.wav": downloaded("audio/wav", ".wav", "бип+wav+Бип_0,2_с"),
    "/media/clip.mp4": downloaded("video/mp4", ".mp4", "vidéo+動画+mp4+Clip_vidéo_mire_de_test"),
    "/media/clip.webm": downloaded("video/webm", ".webm", "видео+webm+Видео_WebM"),
    "data:": Expected(
        "data", None, "image/png", ".png", "data-uri+pixel+пиксель+Pixel_bleu_données_inline"
    ),
    "/static/logo.svg": Expected("local"),
    "/media/missing.jpg": Expected("failed", "http-404"),
    "/media/not-an-image.png": Expected("failed", "content-mismatch"),
}

FIGURES = site_figures()
HTTP_SOURCES = {f.source for f in FIGURES if f.source.startswith("http")}
FAILED = {f.source: EXPECTED[f.key].reason for f in FIGURES if EXPECTED[f.key].status == "failed"}
DEMO_PAGES = 3  # the index and the two pages it links to


# -- running the demo ----------------------------------------------------------------------------


@dataclass
class Run:
    returncode: int
    log: str
    jsonl: str
    files: dict[str, bytes]
    mtimes: dict[str, int]
    leftovers: list[str]
    started: float
    finished: float

    @property
    def items(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.jsonl.splitlines()]

    def stat(self, name: str) -> int:
        """An integer from the stats Scrapy dumps at INFO when the spider closes."""
        found = re.findall(rf"'{re.escape(name)}': (\d+)[,}}]?$", self.log, re.MULTILINE)
        assert len(found) == 1, (name, found)
        return int(found[0])

    def by_figure(self) -> Iterator[tuple[Figure, dict[str, Any], dict[str, Any]]]:
        """Each figure of the site with its item and that item's one media record."""
        items = {(item["page"], item["media"][0]["source"]): item for item in self.items}
        assert len(items) == len(self.items) == len(FIGURES)
        for figure in FIGURES:
            item = items[figure.page, figure.source]
            yield figure, item, item["media"][0]

    def warnings(self) -> list[str]:
        return re.findall(r"^\S+ \S+ \[[^\]]+\] WARNING: (.*)$", self.log, re.MULTILINE)


@dataclass
class Demo:
    store: Path
    first: Run
    second: Run


def snapshot(store: Path) -> tuple[dict[str, bytes], dict[str, int], list[str]]:
    files: dict[str, bytes] = {}
    mtimes: dict[str, int] = {}
    for path in store.rglob("*"):
        relative = path.relative_to(store)
        if path.is_file() and META not in relative.parts:
            files[relative.as_posix()] = path.read_bytes()
            mtimes[relative.as_posix()] = path.stat().st_mtime_ns
    tmp = store / META / "tmp"
    leftovers = sorted(p.name for p in tmp.iterdir()) if tmp.is_dir() else []
    return files, mtimes, leftovers


def run_demo(folder: Path, output: str) -> Run:
    started = time.time()
    completed = scrapy(folder, "crawl", "demo", "-O", output)
    finished = time.time()
    out = folder / output
    jsonl = out.read_text("utf-8") if out.exists() else ""
    files, mtimes, leftovers = snapshot(folder / STORE)
    return Run(
        completed.returncode,
        completed.stderr,
        jsonl,
        files,
        mtimes,
        leftovers,
        started,
        finished,
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    folder = tmp_path_factory.mktemp("demo")
    first = run_demo(folder, "demo.jsonl")
    second = run_demo(folder, "demo-2.jsonl")
    return Demo(folder / STORE, first, second)


@pytest.fixture(params=["first", "second"])
def run(request: pytest.FixtureRequest, demo: Demo) -> Run:
    result: Run = getattr(demo, request.param)
    return result


# -- the site table ------------------------------------------------------------------------------


def test_the_table_covers_every_figure_of_the_site() -> None:
    assert {figure.key for figure in FIGURES} == set(EXPECTED)
    assert len(FIGURES) == 15
    assert len(HTTP_SOURCES) == 12
    assert [f.src for f in FIGURES].count("/media/cat.jpg") == 2
    for figure in FIGURES:
        expected = EXPECTED[figure.key]
        if expected.status == "downloaded":
            assert (SITE_MEDIA / Path(figure.src).name).is_file(), figure.src


# -- both runs -----------------------------------------------------------------------------------


def test_demo_exits_cleanly_with_one_item_per_figure(run: Run) -> None:
    assert run.returncode == 0, run.log[-3000:]
    assert "Spider closed (finished)" in run.log
    assert len(run.items) == 15
    assert run.stat("item_scraped_count") == 15
    for item in run.items:
        assert len(item["images"]) == 1, item
        assert len(item["media"]) == 1, item
        assert item["images"] == [item["media"][0]["url"]]
    assert sorted((item["page"], item["media"][0]["source"]) for item in run.items) == sorted(
        (figure.page, figure.source) for figure in FIGURES
    )
    assert run.leftovers == []


def test_jsonl_parses_line_by_line_with_unicode_intact(run: Run) -> None:
    lines = run.jsonl.split("\n")
    assert lines[-1] == ""
    assert len(lines[:-1]) == 15
    for line in lines[:-1]:
        assert isinstance(json.loads(line), dict)
    # FEED_EXPORT_ENCODING = "utf-8": text is written as is, not as \u escapes.
    assert "Chat mignon — été" in run.jsonl
    assert "\\u" not in run.jsonl
    for figure, item, _ in run.by_figure():
        assert item["alt"] == figure.alt
        assert item["tags"] == list(figure.tags)
        assert item["kind"] == figure.kind


def test_one_warning_per_failed_source(run: Run) -> None:
    warnings = run.warnings()
    assert len(warnings) == len(FAILED) == 2
    for source, reason in FAILED.items():
        naming = [w for w in warnings if source in w]
        assert len(naming) == 1, (source, warnings)
        assert reason is not None
        assert reason in naming[0]
    assert run.stat("log_count/WARNING") == 2
    assert run.stat("mediapipe/failed/http-404") == 1
    assert run.stat("mediapipe/failed/content-mismatch") == 1


def test_log_ends_with_the_mediapipe_summary(run: Run) -> None:
    last = run.log.rstrip("\n").splitlines()[-1]
    match = re.search(
        r" INFO: mediapipe: (\d+) sources in (\d+) items: (\d+) downloaded, (\d+) from data URIs, "
        r"(\d+) reused, (\d+) local, (\d+) failed \((.*)\); (\d+) files, (\d+) bytes written$",
        last,
    )
    assert match is not None, last
    records = [record for _, _, record in run.by_figure()]
    tally = Counter(record["status"] for record in records)
    written = {r["path"]: r["size"] for r in records if r["status"] in {"downloaded", "data"}}
    if tally["uptodate"]:
        written = {}  # a second run writes nothing, not even the data URI's file again
    assert [int(match[n]) for n in (1, 2, 3, 4, 5, 6, 7, 9, 10)] == [
        15,
        15,
        tally["downloaded"],
        tally["data"],
        tally["uptodate"],
        tally["local"],
        tally["failed"],
        len(written),
        sum(written.values()),
    ]
    assert sorted(match[8].split(", ")) == ["content-mismatch: 1", "http-404: 1"]


def test_failed_and_local_sources_are_left_as_they_were(run: Run) -> None:
    for figure, item, record in run.by_figure():
        expected = EXPECTED[figure.key]
        if expected.status not in {"failed", "local"}:
            continue
        assert item["images"] == [figure.source]
        assert record == {
            "source": figure.source,
            "url": figure.source,
            "path": None,
            "status": expected.status,
            "reason": expected.reason,
            "mime": None,
            "size": None,
            "sha256": None,
            "width": None,
            "height": None,
            "thumbnails": {},
            "thumbnails_reason": None,
        }
        if expected.status == "failed":
            assert not [name for name in run.files if h16(figure.source) in name]


# -- run 1: the store is filled ------------------------------------------------------------------


def test_every_source_gets_its_status_mime_and_extension(demo: Demo) -> None:
    for figure, _, record in demo.first.by_figure():
        expected = EXPECTED[figure.key]
        assert (record["status"], record["reason"]) == (expected.status, expected.reason), figure
        assert record["mime"] == expected.mime, figure
        if expected.ext is not None:
            assert Path(record["path"]).suffix == expected.ext, figure


def test_stored_bytes_are_the_site_files(demo: Demo) -> None:
    run = demo.first
    for figure, _, record in run.by_figure():
        expected = EXPECTED[figure.key]
        if expected.status == "downloaded":
            original = (SITE_MEDIA / Path(figure.src).name).read_bytes()
        elif expected.status == "data":
            original = base64.b64decode(figure.src.split(",", 1)[1])
        else:
            continue
        assert run.files[record["path"]] == original, figure
        assert (demo.store / record["path"]).read_bytes() == original
        assert record["size"] == len(original)
        assert record["sha256"] == hashlib.sha256(original).hexdigest()
        if expected.mime is not None and expected.mime.startswith("image/"):
            with Image.open(demo.store / record["path"]) as image:
                assert (record["width"], record["height"]) == image.size, figure
        else:
            assert (record["width"], record["height"]) == (None, None), figure
    # One file per stored source (the cat is stored once, failures leave nothing), and one
    # thumbnail per stored picture.
    stored = {r["path"] for _, _, r in run.by_figure() if r["path"] is not None}
    thumbnails = {
        thumb["path"] for _, _, r in run.by_figure() for thumb in r["thumbnails"].values()
    }
    assert set(run.files) == stored | thumbnails
    assert len(stored) == 11
    assert len(thumbnails) == 6


def test_every_stored_picture_gets_a_thumbnail(demo: Demo) -> None:
    for figure, item, record in demo.first.by_figure():
        expected = EXPECTED[figure.key]
        pictures = expected.mime is not None and expected.mime.startswith("image/")
        if not pictures:
            assert record["thumbnails"] == {}, figure
            continue
        stem = record["path"].rsplit(".", 1)[0]
        thumb = record["thumbnails"]["small"]
        assert thumb["path"] == f"thumbnails/small/{stem}.webp"
        assert thumb["url"] == "/thumbnail/small/" + quote(f"{stem}.webp", safe="-._~+")
        with Image.open(demo.store / thumb["path"]) as image:
            assert image.format == "WEBP"
            assert image.size == (thumb["width"], thumb["height"])
        # Fitted in 320 x 320, never enlarged, the aspect ratio kept (to a pixel).
        width, height = record["width"], record["height"]
        scale = min(1.0, 320 / width, 320 / height)
        assert abs(thumb["width"] - width * scale) <= 1, figure
        assert abs(thumb["height"] - height * scale) <= 1, figure
        assert record["thumbnails_reason"] is None
        # The second run finds them: the same record, nothing drawn again.
        again = {(i["page"], i["media"][0]["source"]): i["media"][0] for i in demo.second.items}
        assert again[figure.page, figure.source]["thumbnails"] == record["thumbnails"]
        assert item["media"][0] is record
    assert demo.first.stat("mediapipe/thumbnails/built") == 6
    assert demo.second.stat("mediapipe/thumbnails/reused") == 6  # the cat once, shown twice
    assert "mediapipe/thumbnails/built" not in demo.second.log


def test_file_names_are_exact(demo: Demo) -> None:
    cat = f"{DEMO}/media/cat.jpg"
    names = {record["source"]: record["path"] for _, _, record in demo.first.by_figure()}
    assert names[cat] == f"1735689600_chat+été+mignon+Chat_mignon_été_{h16(cat)}.jpg"
    assert SITE_LAST_MODIFIED == 1735689600
    for figure, _, record in demo.first.by_figure():
        expected = EXPECTED[figure.key]
        if expected.status == "downloaded":
            assert record["path"] == (
                f"{SITE_LAST_MODIFIED}_{expected.label}_{h16(figure.source)}{expected.ext}"
            )
        elif expected.status == "data":
            # A data URI has no Last-Modified: its name carries the time it was stored.
            epoch, rest = record["path"].split("_", 1)
            assert int(demo.first.started) <= int(epoch) <= demo.first.finished
            assert rest == f"{expected.label}_{h16(figure.source)}{expected.ext}"


def test_returned_urls_are_the_encoded_name_and_source(demo: Demo) -> None:
    allowed = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/%]+")
    for figure, item, record in demo.first.by_figure():
        if record["path"] is None:
            continue
        url = item["images"][0]
        path, has_query, query = url.partition("?")
        assert allowed.fullmatch(path), url
        assert unquote(path) == "/media/" + record["path"]
        if figure.src.startswith("data:"):
            assert not has_query, url  # no provenance for data: URIs
        else:
            assert query == "url=" + quote(figure.source, safe="")
    cat = f"{DEMO}/media/cat.jpg"
    cat_name = f"1735689600_chat+été+mignon+Chat_mignon_été_{h16(cat)}.jpg"
    cat_urls = {item["images"][0] for item in demo.first.items if item["media"][0]["source"] == cat}
    assert len(cat_urls) == 1
    [cat_url] = cat_urls
    assert unquote(cat_url) == f"/media/{cat_name}?url={cat}"
    assert cat_url.endswith("?url=http%3A%2F%2Fdemo.mediapipe.test%2Fmedia%2Fcat.jpg")


def test_the_duplicate_source_is_fetched_once(demo: Demo) -> None:
    run = demo.first
    cats = [
        (item, record) for figure, item, record in run.by_figure() if figure.src.endswith("cat.jpg")
    ]
    assert len(cats) == 2
    assert {item["page"] for item, _ in cats} == {f"{DEMO}/gallery.html", f"{DEMO}/sounds.html"}
    assert cats[0][0]["images"] == cats[1][0]["images"]
    assert cats[0][1] == cats[1][1]
    assert run.stat("downloader/request_count") == DEMO_PAGES + len(HTTP_SOURCES)
    assert run.stat("downloader/response_status_count/404") == 1


# -- run 2: the store is reused ------------------------------------------------------------------


def test_second_run_reuses_the_store_without_requests(demo: Demo) -> None:
    first, second = demo.first, demo.second
    assert second.stat("downloader/request_count") == DEMO_PAGES + len(FAILED)
    assert second.files == first.files
    assert second.mtimes == first.mtimes
    before = {(f.page, f.src): (item, record) for f, item, record in first.by_figure()}
    for figure, item, record in second.by_figure():
        expected = EXPECTED[figure.key]
        old_item, old_record = before[figure.page, figure.src]
        assert item["images"] == old_item["images"], figure
        if expected.status == "downloaded":
            assert record == {**old_record, "status": "uptodate"}, figure
        else:
            assert record == old_record, figure
    assert second.stat("mediapipe/status/uptodate") == 11
    assert "mediapipe/status/downloaded" not in second.log
