"""``ADDONS = {"mediapipe.Addon": 300}`` switches the whole add-on on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mediapipe.middleware import MediaDownloaderMiddleware
from mediapipe.pipeline import MediaPipeline

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

PIPELINE_PRIORITY = 300
# Above Scrapy's retry (550), compression (590) and redirect (600) middlewares, so that the media
# middleware sees every raw response before them.
MIDDLEWARE_PRIORITY = 950
CSV_EXPORTER = "mediapipe.exporters.CsvItemExporter"


class Addon:
    """Enables :class:`MediaPipeline`, :class:`MediaDownloaderMiddleware` and a CSV exporter
    that writes the ``media`` records as JSON; what the project already set wins."""

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
