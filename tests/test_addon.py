"""Activation (add-on or by hand), start-up checks, feed exports and the item types."""

from __future__ import annotations

import csv
import dataclasses
import importlib.metadata
import json
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import attrs
import pydantic
import pytest
import pytest_twisted
import scrapy
from scrapy.settings import Settings
from scrapy.utils.conf import build_component_list
from scrapy.utils.misc import load_object
from scrapy.utils.test import get_crawler

import mediapipe
from mediapipe import Addon, MediaDownloaderMiddleware, MediaPipeline
from mediapipe.exporters import CsvItemExporter, XmlItemExporter
from mediapipe.settings import SettingError
from tests import media
from tests.storecheck import stored_files

if TYPE_CHECKING:
    from tests.conftest import Crawl
    from tests.mockserver import MockServer

PIPELINE = "mediapipe.MediaPipeline"
MIDDLEWARE = "mediapipe.MediaDownloaderMiddleware"


def enabled(settings: Settings, name: str) -> list[Any]:
    """The components of a priority dict setting in the order Scrapy runs them, as classes."""
    return [
        load_object(entry) if isinstance(entry, str) else entry
        for entry in build_component_list(settings.getwithbase(name))
    ]


def component_priorities(settings: Settings, name: str) -> dict[Any, int | None]:
    """A priority dict setting with every key loaded, so that paths and classes compare."""
    return {load_object(key): value for key, value in settings.getdict(name).items()}


# -- the add-on on a bare Settings object --------------------------------------------------------


def test_addon_enables_pipeline_middleware_and_csv_exporter() -> None:
    settings = Settings()

    Addon().update_settings(settings)

    assert component_priorities(settings, "ITEM_PIPELINES") == {MediaPipeline: 300}
    assert component_priorities(settings, "DOWNLOADER_MIDDLEWARES") == {
        MediaDownloaderMiddleware: 950
    }
    assert load_object(settings.getdict("FEED_EXPORTERS")["csv"]) is CsvItemExporter
    assert load_object(settings.getdict("FEED_EXPORTERS")["xml"]) is XmlItemExporter
    # 950 puts the media middleware next to the download handler: it sees each raw response
    # before retry, compression and redirect do.
    middlewares = enabled(settings, "DOWNLOADER_MIDDLEWARES")
    assert middlewares[-1] is MediaDownloaderMiddleware
    assert enabled(settings, "ITEM_PIPELINES") == [MediaPipeline]


@pytest.mark.parametrize(
    ("pipeline_key", "middleware_key"),
    [
        (PIPELINE, MIDDLEWARE),
        ("mediapipe.pipeline.MediaPipeline", "mediapipe.middleware.MediaDownloaderMiddleware"),
        (MediaPipeline, MediaDownloaderMiddleware),
    ],
    ids=["package-path", "module-path", "class"],
)
def test_addon_keeps_priorities_the_project_set(pipeline_key: Any, middleware_key: Any) -> None:
    pipelines = {pipeline_key: 500, "scrapy.pipelines.files.FilesPipeline": 1}
    middlewares = {middleware_key: 543, "spiders.middlewares.DemoSiteRouter": 100}
    settings = Settings(
        {"ITEM_PIPELINES": dict(pipelines), "DOWNLOADER_MIDDLEWARES": dict(middlewares)},
        priority="project",
    )

    Addon().update_settings(settings)

    assert settings.getdict("ITEM_PIPELINES") == pipelines
    assert settings.getdict("DOWNLOADER_MIDDLEWARES") == middlewares
    assert settings.getpriority("ITEM_PIPELINES") == settings.getpriority("DOWNLOADER_MIDDLEWARES")
    assert settings.getpriority("ITEM_PIPELINES") == 20  # still the project's


def test_addon_keeps_a_component_the_project_switched_off() -> None:
    settings = Settings(
        {"ITEM_PIPELINES": {PIPELINE: None}, "DOWNLOADER_MIDDLEWARES": {MIDDLEWARE: None}},
        priority="project",
    )

    Addon().update_settings(settings)

    assert settings.getdict("ITEM_PIPELINES") == {PIPELINE: None}
    assert settings.getdict("DOWNLOADER_MIDDLEWARES") == {MIDDLEWARE: None}
    assert enabled(settings, "ITEM_PIPELINES") == []


def test_addon_keeps_the_project_csv_exporter() -> None:
    exporters = {
        "csv": "scrapy.exporters.CsvItemExporter",
        "xml": "scrapy.exporters.XmlItemExporter",
    }
    settings = Settings({"FEED_EXPORTERS": dict(exporters)}, priority="project")

    Addon().update_settings(settings)

    assert settings.getdict("FEED_EXPORTERS") == exporters


def test_addon_adds_csv_next_to_other_project_exporters() -> None:
    settings = Settings(
        {"FEED_EXPORTERS": {"xml": "scrapy.exporters.XmlItemExporter"}}, priority="project"
    )

    Addon().update_settings(settings)

    assert settings.getdict("FEED_EXPORTERS") == {
        "xml": "scrapy.exporters.XmlItemExporter",
        "csv": "mediapipe.exporters.CsvItemExporter",
    }


def test_addon_adds_xml_next_to_a_project_csv_exporter() -> None:
    settings = Settings(
        {"FEED_EXPORTERS": {"csv": "scrapy.exporters.CsvItemExporter"}}, priority="project"
    )

    Addon().update_settings(settings)

    assert settings.getdict("FEED_EXPORTERS") == {
        "csv": "scrapy.exporters.CsvItemExporter",
        "xml": "mediapipe.exporters.XmlItemExporter",
    }


def test_addon_through_a_real_crawler_keeps_project_priorities() -> None:
    crawler = get_crawler(
        settings_dict={
            "ADDONS": {"mediapipe.Addon": 300},
            "ITEM_PIPELINES": {PIPELINE: 777},
            "FEED_EXPORTERS": {"csv": "scrapy.exporters.CsvItemExporter"},
        }
    )

    assert crawler.settings.getdict("ITEM_PIPELINES") == {PIPELINE: 777}
    assert component_priorities(crawler.settings, "DOWNLOADER_MIDDLEWARES") == {
        MediaDownloaderMiddleware: 950
    }
    assert crawler.settings.getdict("FEED_EXPORTERS") == {
        "csv": "scrapy.exporters.CsvItemExporter",
        "xml": "mediapipe.exporters.XmlItemExporter",
    }


# -- activation in a crawl -----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_manual_activation_without_the_addon(crawl: Crawl, server: MockServer) -> None:
    source = f"{server.url}/img/png"
    settings = {
        "ADDONS": {},
        "ITEM_PIPELINES": {PIPELINE: 300},
        "DOWNLOADER_MIDDLEWARES": {MIDDLEWARE: 950},
    }

    result = await crawl([{"images": [source]}], settings)

    [item] = result.items
    [record] = item["media"]
    assert record["status"] == "downloaded"
    assert item["images"] == [record["url"]]
    assert record["url"].startswith("/media/")
    assert stored_files(result.store) == {record["path"]: media.PNG}
    assert server.count("/img/png") == 1
    assert result.stat("mediapipe/status/downloaded") == 1
    assert result.warnings == []


@pytest.mark.parametrize(
    "settings",
    [
        {"ADDONS": {}, "ITEM_PIPELINES": {PIPELINE: 300}},
        {"ADDONS": {}, "ITEM_PIPELINES": {PIPELINE: 300}, "DOWNLOADER_MIDDLEWARES": {}},
        # The add-on respects a middleware the project switched off, and the pipeline notices.
        {"DOWNLOADER_MIDDLEWARES": {MIDDLEWARE: None}},
    ],
    ids=["no-middleware", "empty-middlewares", "addon-middleware-off"],
)
@pytest_twisted.ensureDeferred
async def test_pipeline_without_middleware_fails_at_start(
    crawl: Crawl, server: MockServer, settings: dict[str, Any]
) -> None:
    with pytest.raises(SettingError, match=r"mediapipe\.MediaDownloaderMiddleware"):
        await crawl([{"images": [f"{server.url}/img/png"]}], settings)

    assert server.requested == []
    assert stored_files(crawl.store) == {}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MEDIAPIPE_MAX_NAME_BYTES", 10),
        ("MEDIAPIPE_MAX_NAME_BYTES", 256),
        ("MEDIAPIPE_MAX_NAME_BYTES", "many"),
        ("MEDIAPIPE_MEDIA_TYPES", ["png"]),
        ("MEDIAPIPE_MEDIA_TYPES", []),
        ("MEDIAPIPE_EXPIRES", -1),
        ("MEDIAPIPE_EXPIRES", "soon"),
        ("MEDIAPIPE_ADD_URL", 2),
        ("MEDIAPIPE_ADD_URL", ["url"]),
        ("MEDIAPIPE_MAX_SIZE", -1),
        ("MEDIAPIPE_CACHE_SIZE", 0),
        ("MEDIAPIPE_URL_PREFIX", ""),
        ("MEDIAPIPE_URLS_FIELD", 5),
        ("MEDIAPIPE_RESULTS_FIELD", 5),
        ("MEDIAPIPE_FSYNC", "sometimes"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_bad_setting_fails_at_start_naming_it(
    crawl: Crawl, server: MockServer, name: str, value: Any
) -> None:
    with pytest.raises(SettingError, match=name):
        await crawl([{"images": [f"{server.url}/img/png"]}], {name: value})

    assert server.requested == []
    assert stored_files(crawl.store) == {}


@pytest_twisted.ensureDeferred
async def test_store_below_a_regular_file_fails_at_start(
    crawl: Crawl, server: MockServer, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"not a folder")
    store = blocker / "store"

    with pytest.raises(SettingError, match="MEDIAPIPE_STORE") as failure:
        await crawl([{"images": [f"{server.url}/img/png"]}], {"MEDIAPIPE_STORE": str(store)})

    assert str(store) in str(failure.value)
    assert server.requested == []
    assert blocker.read_bytes() == b"not a folder"


# -- feed exports --------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_csv_and_jsonlines_exports_agree(
    crawl: Crawl, server: MockServer, tmp_path: Path
) -> None:
    csv_path, jsonl_path = tmp_path / "out.csv", tmp_path / "out.jsonl"
    items = [
        {
            "name": "un",
            "images": [f"{server.url}/img/png", f"{server.url}/status/404"],
            "alt": "Carré rouge — été",
        },
        {
            "name": "deux",
            "images": [f"{server.url}/img/png?deux", f"{server.url}/status/404?deux"],
            "alt": "猫, 写真",
        },
    ]
    feeds = {str(csv_path): {"format": "csv"}, str(jsonl_path): {"format": "jsonlines"}}

    result = await crawl(items, {"FEEDS": feeds})

    assert result.stat("feedexport/success_count/FileFeedStorage") == 2
    lines = jsonl_path.read_text("utf-8").splitlines()
    exported = {record["name"]: record for record in map(json.loads, lines)}
    with csv_path.open(encoding="utf-8", newline="") as stream:
        rows = {row["name"]: row for row in csv.DictReader(stream)}
    assert set(exported) == set(rows) == {"un", "deux"}
    for name, row in rows.items():
        record = exported[name]
        assert [entry["status"] for entry in record["media"]] == ["downloaded", "failed"]
        assert record["images"][0].startswith("/media/")
        assert record["images"][1] == record["media"][1]["source"]
        assert record["images"] == [entry["url"] for entry in record["media"]]
        # Scrapy's CSV exporter joins a list of str with ",".
        assert row["images"] == ",".join(record["images"])
        assert json.loads(row["media"]) == record["media"]
        assert row["alt"] == record["alt"]
    assert exported["un"]["alt"] == "Carré rouge — été"
    assert exported["deux"]["media"][0]["path"].count("猫") == 1


# -- item types ----------------------------------------------------------------------------------


class ScrapyWithMedia(scrapy.Item):
    images = scrapy.Field()
    alt = scrapy.Field()
    media = scrapy.Field()


class ScrapyWithoutMedia(scrapy.Item):
    images = scrapy.Field()
    alt = scrapy.Field()


@dataclasses.dataclass
class DataclassWithMedia:
    images: list[str]
    alt: str | None = None
    media: list[dict[str, Any]] | None = None


@dataclasses.dataclass
class DataclassWithoutMedia:
    images: list[str]
    alt: str | None = None


@attrs.define
class AttrsWithMedia:
    images: list[str]
    alt: str | None = None
    media: list[dict[str, Any]] | None = None


@attrs.define
class AttrsWithoutMedia:
    images: list[str]
    alt: str | None = None


class PydanticWithMedia(pydantic.BaseModel):
    images: list[str]
    alt: str | None = None
    media: list[dict[str, Any]] | None = None


class PydanticWithoutMedia(pydantic.BaseModel):
    images: list[str]
    alt: str | None = None


WITH_MEDIA: list[type] = [ScrapyWithMedia, DataclassWithMedia, AttrsWithMedia, PydanticWithMedia]
WITHOUT_MEDIA: list[type] = [
    ScrapyWithoutMedia,
    DataclassWithoutMedia,
    AttrsWithoutMedia,
    PydanticWithoutMedia,
]


@pytest_twisted.ensureDeferred
async def test_every_item_type_is_rewritten_in_place(crawl: Crawl, server: MockServer) -> None:
    # Two items of each class without the field: one WARNING per class, a stat per item.
    classes = WITH_MEDIA + WITHOUT_MEDIA + WITHOUT_MEDIA
    sources = {index: f"{server.url}/img/png?item={index}" for index in range(len(classes))}
    items = [
        cls(images=[sources[index], f"{server.url}/status/404"], alt=f"{cls.__name__} {index}")
        for index, cls in enumerate(classes)
    ]

    result = await crawl(items)

    assert len(result.items) == len(items)
    for item in items:
        assert any(scraped is item for scraped in result.items), type(item).__name__
    files = stored_files(result.store)
    for index, item in enumerate(items):
        cls = type(item)
        images = item["images"] if isinstance(item, scrapy.Item) else item.images
        assert len(images) == 2, cls.__name__
        assert images[0].startswith("/media/"), cls.__name__
        assert images[0].endswith("?url=" + quote(sources[index], safe=""))
        assert images[1] == f"{server.url}/status/404"
        stored = [name for name in files if f"{cls.__name__}_{index}_" in name]
        assert len(stored) == 1, (cls.__name__, list(files))
        assert files[stored[0]] == media.PNG
        if cls in WITH_MEDIA:
            records = item["media"] if isinstance(item, scrapy.Item) else item.media
            assert records is not None
            assert [record["status"] for record in records] == ["downloaded", "failed"]
            assert [record["url"] for record in records] == images
            assert records[0]["path"] == stored[0]
            assert records[1]["reason"] == "http-404"
        elif isinstance(item, scrapy.Item):
            assert "media" not in item
        else:
            assert not hasattr(item, "media")
    missing = [w for w in result.warnings if "'media'" in w]
    assert len(missing) == len(WITHOUT_MEDIA)
    for cls in WITHOUT_MEDIA:
        assert sum(cls.__name__ in message for message in missing) == 1, (cls, missing)
    assert result.stat("mediapipe/results_field_missing") == 2 * len(WITHOUT_MEDIA)
    assert result.stat("mediapipe/items") == len(items)
    # The one 404 source is fetched once and warned about once.
    assert server.count("/status/404") == 1
    failed = [w for w in result.warnings if "http-404" in w]
    assert len(failed) == 1
    assert f"{server.url}/status/404" in failed[0]
    assert len(result.warnings) == len(WITHOUT_MEDIA) + 1


# -- items the pipeline leaves alone -------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_items_without_media_sources_pass_through(crawl: Crawl, server: MockServer) -> None:
    items: list[Any] = [
        {"title": "no field"},
        {"title": "none", "images": None},
        {"title": "empty list", "images": []},
        {"title": "empty tuple", "images": ()},
        ScrapyWithMedia(alt="declared, never set"),
        {"title": "an int", "images": 7},
        {"title": "a dict", "images": {"src": f"{server.url}/img/png"}},
    ]
    before = [dict(item) for item in items]

    result = await crawl(items)

    assert len(result.items) == len(items)
    assert [dict(item) for item in items] == before
    for item in items:
        assert "media" not in item
    assert server.requested == []
    assert stored_files(result.store) == {}
    assert result.stat("mediapipe/invalid_field") == 2
    assert result.stat("mediapipe/items") == 0
    assert result.stat("mediapipe/sources") == 0
    assert len(result.warnings) == 2
    for warning, kind in zip(sorted(result.warnings), ["dict", "int"], strict=True):
        assert "'images'" in warning
        assert f" {kind}," in warning
        assert "untouched" in warning


@pytest.mark.parametrize(
    ("reactor", "handler"),
    [
        (True, "mediapipe.handlers.MediaHTTP11DownloadHandler"),
        (False, "mediapipe.handlers.MediaAiohttpDownloadHandler"),
    ],
)
def test_addon_sets_the_streaming_download_handlers(reactor: bool, handler: str) -> None:
    settings = Settings({"TWISTED_REACTOR_ENABLED": reactor})
    Addon().update_settings(settings)
    assert settings.getdict("DOWNLOAD_HANDLERS") == {"http": handler, "https": handler}


def test_addon_keeps_download_handlers_the_project_set() -> None:
    own = "myproject.handlers.Mine"
    settings = Settings({"DOWNLOAD_HANDLERS": {"https": own}})
    Addon().update_settings(settings)
    assert settings.getdict("DOWNLOAD_HANDLERS") == {
        "https": own,
        "http": "mediapipe.handlers.MediaHTTP11DownloadHandler",
    }


# -- the distribution ----------------------------------------------------------------------------

DISTRIBUTION = "scrapy-mediapipe"
REPOSITORY = "https://github.com/mediapipe-scrapy/scrapy-mediapipe"
ROOT = Path(__file__).parents[1]


def test_distribution_name_is_not_the_ml_framework() -> None:
    """``mediapipe`` on PyPI is Google's MediaPipe: ``pip install -U mediapipe`` in a project
    would replace the add-on with it. The import package keeps its name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    assert project["name"] == DISTRIBUTION
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    # The installed metadata, as the build backend wrote it from pyproject.toml.
    meta = importlib.metadata.metadata(DISTRIBUTION)
    assert meta["Name"] == DISTRIBUTION
    assert meta["Version"] == mediapipe.__version__
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert dict(url.split(", ", 1) for url in meta.get_all("Project-URL") or []) == {
        "Homepage": REPOSITORY,
        "Source": REPOSITORY,
        "Issues": f"{REPOSITORY}/issues",
        "Changelog": f"{REPOSITORY}/blob/main/CHANGELOG.md",
    }
    # Only this distribution provides the import package: a stale ``mediapipe`` install from
    # before the rename would shadow or be shadowed by it (``pip uninstall mediapipe``).
    assert set(importlib.metadata.packages_distributions()["mediapipe"]) == {DISTRIBUTION}


def test_license_file_is_the_mit_license() -> None:
    text = (ROOT / "LICENSE").read_text("utf-8")
    assert text.startswith("MIT License\n\nCopyright (c) 2026 the mediapipe authors\n")
    assert "Permission is hereby granted, free of charge" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in text
