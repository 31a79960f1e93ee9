"""A static HTML gallery of what a crawl stored, built from its feed."""

from __future__ import annotations

from mediapipe.gallery.feed import Entry, Feed, FeedError, Thumbnail, Totals, read_feed, totals
from mediapipe.gallery.links import BaseLinks, FeedLinks, Links, RelativeLinks
from mediapipe.gallery.page import render_gallery

__all__ = [
    "BaseLinks",
    "Entry",
    "Feed",
    "FeedError",
    "FeedLinks",
    "Links",
    "RelativeLinks",
    "Thumbnail",
    "Totals",
    "read_feed",
    "render_gallery",
    "totals",
]
