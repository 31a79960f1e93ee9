from __future__ import annotations

import contextlib
import importlib
import io
import warnings
from typing import TYPE_CHECKING

from PIL import Image

if TYPE_CHECKING:
    from pathlib import Path


# Telling Pillow the format skips its probing of every plugin in turn.
_PILLOW_FORMATS = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
    "image/bmp": "BMP",
    "image/tiff": "TIFF",
    "image/x-icon": "ICO",
    "image/avif": "AVIF",
}
# The plugin module of each format above. Imported here, once, because Pillow imports every
# plugin it has (tens of milliseconds, holding the GIL) the first time it is asked for a
# format it has not loaded yet: in the middle of a crawl that stalls the reactor thread.
_PLUGINS = ("Jpeg", "Png", "Gif", "WebP", "Bmp", "Tiff", "Ico", "Avif")


def _load_plugins() -> None:
    Image.preinit()  # what Image.open loads first anyway
    for plugin in _PLUGINS:
        # A Pillow built without one: Image.open says so for each file of that format.
        with contextlib.suppress(ImportError):
            importlib.import_module(f"PIL.{plugin}ImagePlugin")


_load_plugins()


# What image_size answers for a header that declares more pixels than Pillow will open (a
# decompression bomb): the caller refuses the file.
TOO_MANY_PIXELS = (-1, -1)


def image_size(path: Path, mime: str | None = None, head: bytes = b"") -> tuple[int, int] | None:
    """Width and height from the image header, without decoding pixels; None if unreadable.

    ``head``, the body's first bytes as sniffed, usually holds the header: the file is then not
    opened again (an open and a read per stored image, on the writer lanes). A header that
    does not fit in it (a JPEG after a large EXIF block) is read from the file."""
    if head:
        size = _header_size(io.BytesIO(head), mime)
        if size is not None:
            return size
    return _header_size(path, mime)


def _header_size(source: Path | io.BytesIO, mime: str | None) -> tuple[int, int] | None:
    known = _PILLOW_FORMATS.get(mime or "")
    with warnings.catch_warnings():
        # A huge declared size is reported as a warning or an error by Pillow before any pixel
        # is decoded; the size is metadata here, so neither may stop the crawl.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(source, formats=[known] if known else None) as image:
                return image.size
        except Image.DecompressionBombError:
            return TOO_MANY_PIXELS
        except (OSError, ValueError, SyntaxError, EOFError):
            return None
