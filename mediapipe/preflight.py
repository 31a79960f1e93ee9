"""Checks of a crawl's component set-up, made once when the pipeline starts.

Each mistake here would otherwise show up far from its cause: media silently buffered or
retried twice, redirect loops reported as dropped requests, or another pipeline's results
downloaded as if they were sources.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy.downloadermiddlewares.httpcompression import HttpCompressionMiddleware
from scrapy.downloadermiddlewares.redirect import RedirectMiddleware
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.pipelines.files import FilesPipeline
from scrapy.pipelines.images import ImagesPipeline
from scrapy.utils.misc import load_object

from mediapipe.middleware import MediaDownloaderMiddleware
from mediapipe.settings import SettingError

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

    from mediapipe.settings import MediaConfig

# The middleware must see each raw response before these do (its process_response runs
# first when its priority is higher): the redirect middleware would otherwise turn a redirect
# loop into a dropped request, and the others would act on media bodies they must not touch.
_BELOW_MEDIA_MIDDLEWARE = (RetryMiddleware, HttpCompressionMiddleware, RedirectMiddleware)


def check_components(settings: BaseSettings, config: MediaConfig) -> None:
    """Raise :class:`SettingError` for a set-up the pipeline cannot work in."""
    _check_middleware(settings)
    _check_other_pipelines(settings, config)


def _enabled(settings: BaseSettings, name: str) -> list[tuple[type, float]]:
    components = []
    for entry, priority in settings.getwithbase(name).items():
        if priority is None:
            continue
        component = load_object(entry) if isinstance(entry, str) else entry
        if isinstance(component, type):
            components.append((component, priority))
    return components


def _check_middleware(settings: BaseSettings) -> None:
    middlewares = _enabled(settings, "DOWNLOADER_MIDDLEWARES")
    ours = [p for cls, p in middlewares if issubclass(cls, MediaDownloaderMiddleware)]
    if not ours:
        raise SettingError(
            "MediaPipeline needs mediapipe.MediaDownloaderMiddleware in "
            "DOWNLOADER_MIDDLEWARES (or use ADDONS = {'mediapipe.Addon': 300})"
        )
    for cls, priority in middlewares:
        if issubclass(cls, _BELOW_MEDIA_MIDDLEWARE) and priority >= ours[0]:
            raise SettingError(
                f"mediapipe.MediaDownloaderMiddleware has priority {ours[0]} in "
                f"DOWNLOADER_MIDDLEWARES, but {cls.__name__} has {priority}: the media "
                "middleware must sit above Scrapy's retry (550), compression (590) and "
                "redirect (600) middlewares; use 950, as the add-on does"
            )


def _check_other_pipelines(settings: BaseSettings, config: MediaConfig) -> None:
    for cls, _ in _enabled(settings, "ITEM_PIPELINES"):
        if not issubclass(cls, FilesPipeline):
            continue
        images = issubclass(cls, ImagesPipeline)
        prefix = "IMAGES" if images else "FILES"
        result_field = _field_setting(settings, cls, prefix, "RESULT_FIELD")
        urls_field = _field_setting(settings, cls, prefix, "URLS_FIELD")
        if config.urls_field in (result_field, urls_field):
            which = "results to" if config.urls_field == result_field else "URLs from"
            raise SettingError(
                f"{cls.__name__} is enabled too and reads its {which} the field "
                f"{config.urls_field!r}, mediapipe's input field (MEDIAPIPE_URLS_FIELD): "
                f"give the two pipelines different fields, e.g. MEDIAPIPE_URLS_FIELD = "
                f"'media_urls', or {prefix}_RESULT_FIELD / {prefix}_URLS_FIELD"
            )


def _field_setting(settings: BaseSettings, cls: type, prefix: str, suffix: str) -> Any:
    # As FilesPipeline reads it: the setting, else the class's attribute, else its default.
    name = f"{prefix}_{suffix}"
    return settings.get(name) or getattr(cls, name, getattr(cls, f"DEFAULT_{name}", None))
