"""MediaConfig: defaults, and a clear error naming the setting for each bad value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from scrapy.settings import Settings

from mediapipe.naming import MIN_NAME_BYTES
from mediapipe.settings import MediaConfig, SettingError


def config(**values: Any) -> MediaConfig:
    return MediaConfig.from_settings(Settings(values))


def test_defaults() -> None:
    cfg = config()
    assert cfg.store == Path("generated_images")
    assert (cfg.urls_field, cfg.tags_field, cfg.alt_field, cfg.results_field) == (
        "images",
        "tags",
        "alt",
        "media",
    )
    assert cfg.media_types == ("image/*", "audio/*", "video/*")
    assert cfg.max_size == Settings().getint("DOWNLOAD_MAXSIZE")
    assert (cfg.max_name_bytes, cfg.url_prefix, cfg.add_url) == (200, "/media/", True)
    assert (cfg.expires_days, cfg.fsync) == (90, False)


def test_values_are_read() -> None:
    cfg = config(
        MEDIAPIPE_STORE=Path("/tmp/x"),
        MEDIAPIPE_MAX_SIZE="1000",
        MEDIAPIPE_MEDIA_TYPES="image/png, video/*",
        MEDIAPIPE_ADD_URL="src=feed",
        MEDIAPIPE_EXPIRES=0.5,
        MEDIAPIPE_RESULTS_FIELD=None,
        MEDIAPIPE_FSYNC="true",
        MEDIAPIPE_DEDUPLICATE="false",
        MEDIAPIPE_WRITER_PROCESS="false",
        MEDIAPIPE_FREEZE_GC="false",
        DOWNLOAD_MAXSIZE=5,
    )
    assert cfg.store == Path("/tmp/x")
    assert cfg.max_size == 1000
    assert cfg.media_types == ("image/png", "video/*")
    assert cfg.add_url == "src=feed"
    assert cfg.expires_days == 0.5
    assert cfg.results_field is None
    assert cfg.fsync is True
    assert cfg.deduplicate is False
    assert (cfg.writer_process, cfg.freeze_gc) == (False, False)
    assert config().deduplicate is True
    assert (config().writer_process, config().freeze_gc) == (True, True)
    assert config(DOWNLOAD_MAXSIZE=5).max_size == 5
    assert config(MEDIAPIPE_ADD_URL="false").add_url is False


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MEDIAPIPE_STORE", ""),
        ("MEDIAPIPE_STORE", 3),
        ("MEDIAPIPE_URLS_FIELD", ""),
        ("MEDIAPIPE_MEDIA_TYPES", ["png"]),
        ("MEDIAPIPE_MEDIA_TYPES", []),
        ("MEDIAPIPE_MEDIA_TYPES", 5),
        ("MEDIAPIPE_MAX_SIZE", -1),
        ("MEDIAPIPE_MAX_SIZE", "big"),
        ("MEDIAPIPE_MAX_NAME_BYTES", MIN_NAME_BYTES - 1),
        ("MEDIAPIPE_MAX_NAME_BYTES", 256),
        ("MEDIAPIPE_URL_PREFIX", ""),
        ("MEDIAPIPE_ADD_URL", 7),
        ("MEDIAPIPE_ADD_URL", ""),
        ("MEDIAPIPE_RESULTS_FIELD", "images"),
        ("MEDIAPIPE_TAGS_FIELD", "alt"),
        ("MEDIAPIPE_EXPIRES", -1),
        ("MEDIAPIPE_EXPIRES", "soon"),
        ("MEDIAPIPE_CACHE_SIZE", 0),
        ("MEDIAPIPE_WRITER_THREADS", 0),
        ("MEDIAPIPE_FSYNC", "maybe"),
        ("MEDIAPIPE_DEDUPLICATE", "sometimes"),
        ("MEDIAPIPE_WRITER_PROCESS", "maybe"),
        ("MEDIAPIPE_FREEZE_GC", "later"),
    ],
)
def test_bad_values_name_the_setting(name: str, value: Any) -> None:
    with pytest.raises(SettingError, match=name):
        config(**{name: value})


def test_allowed_hosts_from_the_command_line() -> None:
    # scrapy crawl ... -s MEDIAPIPE_ALLOWED_HOSTS='["127.0.0.1", "cdn.example"]', or a,b
    for value in ('["127.0.0.1", "cdn.example"]', "127.0.0.1,cdn.example"):
        config = MediaConfig.from_settings(Settings({"MEDIAPIPE_ALLOWED_HOSTS": value}))
        assert config.allowed_hosts == ("127.0.0.1", "cdn.example")


@pytest.mark.parametrize("value", ['["127.0.0.1"', '"[::1', "[not-an-address]"])
def test_malformed_allowed_hosts_are_a_setting_error(value: str) -> None:
    with pytest.raises(SettingError, match="MEDIAPIPE_ALLOWED_HOSTS"):
        MediaConfig.from_settings(Settings({"MEDIAPIPE_ALLOWED_HOSTS": value}))
