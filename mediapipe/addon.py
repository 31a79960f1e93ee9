"""``ADDONS = {"mediapipe.Addon": 300}`` switches the whole add-on on."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mediapipe import compat
from mediapipe.middleware import MediaDownloaderMiddleware
from mediapipe.pipeline import MediaPipeline

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

PIPELINE_PRIORITY = 300
# Above Scrapy's retry (550), compression (590) and redirect (600) middlewares, so that the media
# middleware sees every raw response before them.
MIDDLEWARE_PRIORITY = 950
CSV_EXPORTER = "mediapipe.exporters.CsvItemExporter"
HTTP11_HANDLER = "mediapipe.handlers.MediaHTTP11DownloadHandler"
AIOHTTP_HANDLER = "mediapipe.handlers.MediaAiohttpDownloadHandler"


def streaming_handler(settings: BaseSettings) -> str | None:
    """The media-streaming variant of the handler Scrapy would use for http(s); None, with one
    WARNING, when this Scrapy lacks a name it needs (Scrapy's own handler is then kept)."""
    reactor = settings.getbool("TWISTED_REACTOR_ENABLED", True)
    supported, why = compat.streaming_supported(reactor)
    if not supported:
        logger.warning("%s", why)
        return None
    return HTTP11_HANDLER if reactor else AIOHTTP_HANDLER


class Addon:
    """Enables :class:`MediaPipeline`, :class:`MediaDownloaderMiddleware`, download handlers
    that stream media bodies to disk, and a CSV exporter that writes the ``media`` records as
    JSON; what the project already set wins."""

    def update_settings(self, settings: BaseSettings) -> None:
        settings.setdefault_in_component_priority_dict(
            "ITEM_PIPELINES", MediaPipeline, PIPELINE_PRIORITY
        )
        settings.setdefault_in_component_priority_dict(
            "DOWNLOADER_MIDDLEWARES", MediaDownloaderMiddleware, MIDDLEWARE_PRIORITY
        )
        exporters = settings.getdict("FEED_EXPORTERS")
        if "csv" not in exporters:
            exporters["csv"] = CSV_EXPORTER
            settings.set("FEED_EXPORTERS", exporters, settings.getpriority("FEED_EXPORTERS") or 0)
        handlers = settings.getdict("DOWNLOAD_HANDLERS")
        missing = [scheme for scheme in ("http", "https") if scheme not in handlers]
        handler = streaming_handler(settings) if missing else None
        if handler is not None:
            for scheme in missing:
                handlers[scheme] = handler
            settings.set(
                "DOWNLOAD_HANDLERS", handlers, settings.getpriority("DOWNLOAD_HANDLERS") or 0
            )
