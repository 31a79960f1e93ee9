"""Store the images, audio and video of scraped items under safe Unicode file names."""

from mediapipe.addon import Addon
from mediapipe.api import copy_media
from mediapipe.middleware import MediaDownloaderMiddleware
from mediapipe.pipeline import MediaPipeline

__version__ = "0.2.0"

__all__ = ["Addon", "MediaDownloaderMiddleware", "MediaPipeline", "__version__", "copy_media"]
