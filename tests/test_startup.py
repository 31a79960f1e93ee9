"""Messages that say how to fix things: bad settings stop the crawl with one line and no
traceback, host entries are checked, a conflicting pipeline or a misplaced middleware is
caught at start, and failures that a setting or the spider can fix say which."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import pytest_twisted
from scrapy.settings import Settings

from mediapipe.settings import MediaConfig, SettingError
from tests import media
from tests.scripts import scrapy
from tests.storecheck import stored_files

if TYPE_CHECKING:
    import subprocess

    from tests.conftest import Crawl
    from tests.mockserver import MockServer

REPO = Path(__file__).resolve().parent.parent
MIDDLEWARE = "mediapipe.MediaDownloaderMiddleware"


# -- bad settings: one line, no traceback -------------------------------------------------------


def scrapy_crawl(folder: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return scrapy(folder, "crawl", "demo", "-O", "out.jsonl", *options)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("MEDIAPIPE_MAX_SIZE=-1", "MEDIAPIPE_MAX_SIZE must be an integer >= 0, got '-1'"),
        ("MEDIAPIPE_STORE=/proc/no/such/store", "MEDIAPIPE_STORE = '/proc/no/such/store': "),
        (
            "MEDIAPIPE_ALLOWED_HOSTS=127.0.0.1:8765",
            "MEDIAPIPE_ALLOWED_HOSTS entries are host names or addresses",
        ),
    ],
    ids=["bad-value", "bad-store", "bad-host"],
)
def test_bad_setting_prints_one_line_without_traceback(
    tmp_path: Path, option: str, message: str
) -> None:
    run = scrapy_crawl(tmp_path, "-s", option)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if "mediapipe cannot start" in line]
    assert len(lines) == 1, run.stderr
    assert message in lines[0]
    assert sum(message in line for line in run.stderr.splitlines()) == 1
    assert run.stderr.count(" ERROR: ") == 1
    assert not (tmp_path / "out.jsonl").exists() or (tmp_path / "out.jsonl").read_text() == ""


# -- host entries -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "fix"),
    [
        ("127.0.0.1:8765", "127.0.0.1"),
        ("http://cdn.example.com", "cdn.example.com"),
        ("https://cdn.example.com:8443/images", "cdn.example.com"),
        ("cdn.example.com/images", "cdn.example.com"),
        ("user@cdn.example.com", "cdn.example.com"),
    ],
)
def test_allowed_hosts_entries_that_never_match_are_refused(entry: str, fix: str) -> None:
    with pytest.raises(SettingError) as failure:
        MediaConfig.from_settings(Settings({"MEDIAPIPE_ALLOWED_HOSTS": [entry]}))
    assert str(failure.value) == (
        "MEDIAPIPE_ALLOWED_HOSTS entries are host names or addresses, without scheme, port "
        f"or path (the rule applies to every port of a host): write {fix!r}, not {entry!r}"
    )


def test_allowed_hosts_wildcards_are_refused() -> None:
    with pytest.raises(SettingError) as failure:
        MediaConfig.from_settings(Settings({"MEDIAPIPE_ALLOWED_HOSTS": ["*.example.com"]}))
    assert str(failure.value) == (
        "MEDIAPIPE_ALLOWED_HOSTS entries are exact host names; wildcards such as "
        "'*.example.com' are not supported: list each host"
    )


@pytest.mark.parametrize(
    "entry", ["cdn.example.com", "localhost", "127.0.0.1", "::1", "[::1]", "bücher.example"]
)
def test_allowed_hosts_entries_that_are_hosts_are_taken(entry: str) -> None:
    config = MediaConfig.from_settings(Settings({"MEDIAPIPE_ALLOWED_HOSTS": [entry]}))
    assert config.allowed_hosts == (entry.lower(),)


# -- hints in failures --------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_address_rule_warning_names_the_settings(crawl: Crawl, server: MockServer) -> None:
    source = f"{server.url}/img/png"
    result = await crawl([{"images": [source]}], {"MEDIAPIPE_ALLOW_PRIVATE_NETWORKS": False})
    assert result.items[0]["media"][0]["reason"] == "unsafe-url"
    assert result.warnings == [
        f"Media (failed: unsafe-url): {source} (127.0.0.1 is 127.0.0.1, not a public address; "
        "to allow it, add the host to MEDIAPIPE_ALLOWED_HOSTS, "
        "or set MEDIAPIPE_ALLOW_PRIVATE_NETWORKS = True)"
    ]
    assert server.requested == []


@pytest.mark.parametrize("source", ["../x.jpg", "img/x.jpg", "./x.jpg"])
@pytest_twisted.ensureDeferred
async def test_relative_source_fails_with_a_hint(crawl: Crawl, source: str) -> None:
    result = await crawl([{"images": [source]}])
    record = result.items[0]["media"][0]
    assert (record["status"], record["reason"]) == ("failed", "unsupported-url")
    assert result.warnings == [
        f"Media (failed: unsupported-url): {source} (a relative URL: join it to its page in "
        "the spider, e.g. response.urljoin(src), to have it downloaded)"
    ]


@pytest_twisted.ensureDeferred
async def test_root_relative_sources_are_counted_once(
    crawl: Crawl, caplog: pytest.LogCaptureFixture
) -> None:
    items = [{"images": ["/img/a.jpg", "/img/b.jpg"]}, {"images": ["/img/a.jpg", None]}]
    result = await crawl(items)
    assert [r["status"] for item in result.items for r in item["media"]] == ["local"] * 4
    assert result.warnings == []
    notes = [r for r in caplog.records if "root-relative" in r.getMessage()]
    assert len(notes) == 1
    assert notes[0].levelno == logging.INFO
    assert notes[0].getMessage() == (
        "mediapipe: 2 distinct sources were root-relative paths (such as '/img/a.jpg'), kept "
        "as local paths and not downloaded; if they are URLs of the crawled site, join them "
        "to their page in the spider: response.urljoin(src)"
    )


@pytest_twisted.ensureDeferred
async def test_no_root_relative_note_without_them(
    crawl: Crawl, server: MockServer, caplog: pytest.LogCaptureFixture
) -> None:
    await crawl([{"images": [f"{server.url}/img/png"]}])
    assert not [r for r in caplog.records if "root-relative" in r.getMessage()]


# -- other pipelines and the middleware's place -------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({}, "images"),
        ({"IMAGES_URLS_FIELD": "images", "IMAGES_RESULT_FIELD": "pictures"}, "images"),
    ],
    ids=["result-field", "urls-field"],
)
@pytest_twisted.ensureDeferred
async def test_images_pipeline_on_the_same_field_is_refused_at_start(
    crawl: Crawl, server: MockServer, tmp_path: Path, extra: dict[str, Any], field: str
) -> None:
    settings = {
        "ITEM_PIPELINES": {"scrapy.pipelines.images.ImagesPipeline": 1},
        "IMAGES_STORE": str(tmp_path / "images-store"),
        **extra,
    }
    with pytest.raises(SettingError, match="ImagesPipeline is enabled too") as failure:
        await crawl([{"images": [f"{server.url}/img/png"]}], settings)
    assert f"the field {field!r}, mediapipe's input field (MEDIAPIPE_URLS_FIELD)" in str(
        failure.value
    )
    assert server.requested == []


@pytest_twisted.ensureDeferred
async def test_images_pipeline_beside_mediapipe_on_other_fields(
    crawl: Crawl, server: MockServer, tmp_path: Path
) -> None:
    settings = {
        "ITEM_PIPELINES": {"scrapy.pipelines.images.ImagesPipeline": 1},
        "IMAGES_STORE": str(tmp_path / "images-store"),
        "MEDIAPIPE_URLS_FIELD": "media_urls",
    }
    item = {"image_urls": [f"{server.url}/img/jpeg"], "media_urls": [f"{server.url}/img/png"]}
    result = await crawl([item], settings)
    scraped = result.items[0]
    assert scraped["media"][0]["status"] == "downloaded"
    assert stored_files(crawl.store) == {scraped["media"][0]["path"]: media.PNG}
    assert len(scraped["images"]) == 1  # ImagesPipeline's own result
    assert scraped["images"][0]["url"] == f"{server.url}/img/jpeg"


@pytest.mark.parametrize(
    ("priority", "blocker"),
    [(500, "RetryMiddleware has 550"), (560, "HttpCompressionMiddleware has 590")],
)
@pytest_twisted.ensureDeferred
async def test_middleware_below_scrapys_is_refused_at_start(
    crawl: Crawl, server: MockServer, priority: int, blocker: str
) -> None:
    with pytest.raises(SettingError) as failure:
        await crawl(
            [{"images": [f"{server.url}/img/png"]}],
            {"DOWNLOADER_MIDDLEWARES": {MIDDLEWARE: priority}},
        )
    assert str(failure.value).startswith(
        f"mediapipe.MediaDownloaderMiddleware has priority {priority} in "
        f"DOWNLOADER_MIDDLEWARES, but {blocker}: "
    )
    assert server.requested == []


@pytest_twisted.ensureDeferred
async def test_middleware_may_sit_lower_when_those_middlewares_are_off(
    crawl: Crawl, server: MockServer
) -> None:
    off = {
        "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
        "scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware": None,
        "scrapy.downloadermiddlewares.redirect.RedirectMiddleware": None,
    }
    result = await crawl(
        [{"images": [f"{server.url}/img/png"]}],
        {"DOWNLOADER_MIDDLEWARES": {MIDDLEWARE: 500, **off}},
    )
    assert result.items[0]["media"][0]["status"] == "downloaded"
