"""Store the images, audio and video of scraped items under safe Unicode file names."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mediapipe.addon import Addon
    from mediapipe.api import copy_media
    from mediapipe.middleware import MediaDownloaderMiddleware
    from mediapipe.pipeline import MediaPipeline

__version__ = "0.2.0"

__all__ = ["Addon", "MediaDownloaderMiddleware", "MediaPipeline", "__version__", "copy_media"]

# Loaded on first use, so that the writer process (mediapipe.writer_process) imports no Scrapy.
_PUBLIC = {
    "Addon": "mediapipe.addon",
    "copy_media": "mediapipe.api",
    "MediaDownloaderMiddleware": "mediapipe.middleware",
    "MediaPipeline": "mediapipe.pipeline",
}


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'mediapipe' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
