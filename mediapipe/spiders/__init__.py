"""A spider for any site's media, to run as is or to subclass."""

from __future__ import annotations

from mediapipe.spiders.media import MediaSpider
from mediapipe.spiders.sources import PageSource, page_sources, selector_sources

__all__ = ["MediaSpider", "PageSource", "page_sources", "selector_sources"]
