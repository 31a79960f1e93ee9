"""``ADDONS = {"mediapipe.Addon": 300}`` switches the whole add-on on."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapy.extensions.logstats import LogStats
from scrapy.utils.misc import load_object

from mediapipe import compat
from mediapipe.middleware import MediaDownloaderMiddleware
from mediapipe.pipeline import MediaPipeline
from mediapipe.progress import MediaLogStats

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)

PIPELINE_PRIORITY = 300
# Above Scrapy's retry (550), compression (590) and redirect (600) middlewares, so that the media
# middleware sees every raw response before them.
MIDDLEWARE_PRIORITY = 950
# By feed format: used for the formats the project has no exporter of its own for.
FEED_EXPORTERS = {
    "csv": "mediapipe.exporters.CsvItemExporter",
    "xml": "mediapipe.exporters.XmlItemExporter",
}
# In place of Scrapy's LogStats, at its priority. Its key must be spelled as in
# EXTENSIONS_BASE: a class object there would be another entry, leaving LogStats on.
SCRAPY_LOGSTATS = "scrapy.extensions.logstats.LogStats"
PROGRESS_EXTENSION = "mediapipe.progress.MediaLogStats"
LOGSTATS_PRIORITY = 0
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


def _is_progress_extension(key: object) -> bool:
    """Whether an ``EXTENSIONS`` key is Scrapy's LogStats, ours, or a subclass of either."""
    if key in (SCRAPY_LOGSTATS, PROGRESS_EXTENSION):
        return True
    try:
        component = load_object(key) if isinstance(key, str) else key
    except (ImportError, NameError, ValueError):
        return False  # Scrapy names a path it cannot load when it loads the extensions
    return isinstance(component, type) and issubclass(component, LogStats | MediaLogStats)


class Addon:
    """Enables :class:`MediaPipeline`, :class:`MediaDownloaderMiddleware`, download handlers
    that stream media bodies to disk, CSV and XML exporters that write the ``media`` records
    readably, and :class:`~mediapipe.progress.MediaLogStats` in place of Scrapy's
    ``LogStats``; what the project already set wins."""

    def update_settings(self, settings: BaseSettings) -> None:
        settings.setdefault_in_component_priority_dict(
            "ITEM_PIPELINES", MediaPipeline, PIPELINE_PRIORITY
        )
        settings.setdefault_in_component_priority_dict(
            "DOWNLOADER_MIDDLEWARES", MediaDownloaderMiddleware, MIDDLEWARE_PRIORITY
        )
        exporters = settings.getdict("FEED_EXPORTERS")
        missing_formats = {
            name: path for name, path in FEED_EXPORTERS.items() if name not in exporters
        }
        if missing_formats:
            exporters.update(missing_formats)
            settings.set("FEED_EXPORTERS", exporters, settings.getpriority("FEED_EXPORTERS") or 0)
        extensions = settings.getdict("EXTENSIONS")
        if not any(_is_progress_extension(key) for key in extensions):
            extensions[SCRAPY_LOGSTATS] = None
            extensions[PROGRESS_EXTENSION] = LOGSTATS_PRIORITY
            settings.set("EXTENSIONS", extensions, settings.getpriority("EXTENSIONS") or 0)
        handlers = settings.getdict("DOWNLOAD_HANDLERS")
        missing = [scheme for scheme in ("http", "https") if scheme not in handlers]
        handler = streaming_handler(settings) if missing else None
        if handler is not None:
            for scheme in missing:
                handlers[scheme] = handler
            settings.set(
                "DOWNLOAD_HANDLERS", handlers, settings.getpriority("DOWNLOAD_HANDLERS") or 0
            )
