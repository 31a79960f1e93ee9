from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from PIL import Image

if TYPE_CHECKING:
    from pathlib import Path


def image_size(path: Path) -> tuple[int, int] | None:
    """Width and height from the image header, without decoding pixels; None if unreadable."""
    with warnings.catch_warnings():
        # A huge declared size is reported as a warning or an error by Pillow before any pixel
        # is decoded; the size is metadata here, so neither may stop the crawl.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as image:
                return image.size
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            return None
