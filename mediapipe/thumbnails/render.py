"""Draws the thumbnails of one image file with Pillow, decoding it once for all sizes."""

from __future__ import annotations

import io
import warnings
from typing import TYPE_CHECKING

from PIL import Image, ImageOps

from mediapipe.settings import THUMB_FORMATS

if TYPE_CHECKING:
    from pathlib import Path

    from mediapipe.settings import ThumbBox

MIME_OF_FORMAT = {"webp": "image/webp", "jpeg": "image/jpeg", "png": "image/png"}
EXTENSION_OF_FORMAT = {"webp": "webp", "jpeg": "jpg", "png": "png"}
# Lossy formats: a quality a thumbnail looks right at, well under the original's bytes.
_QUALITY = 82
# A JPEG's background where the original was transparent: JPEG has no alpha channel.
_BACKGROUND = (255, 255, 255)


class Undecodable(Exception):
    """Pillow cannot decode the image: its thumbnails cannot be drawn."""


def render(
    path: Path, boxes: tuple[ThumbBox, ...], fmt: str
) -> dict[str, tuple[bytes, tuple[int, int]]]:
    """Each box's thumbnail of the image at ``path``, as encoded bytes and pixel size, by
    box name. Fitted inside the box with the aspect ratio kept, never enlarged, EXIF
    orientation applied, first frame of an animation; transparency kept where ``fmt`` has it."""
    try:
        with warnings.catch_warnings():
            # The store refused images past MEDIAPIPE_MAX_PIXELS already; Pillow's own, lower
            # limit is a warning that must not stop a thumbnail of an accepted image.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                largest = max(max(box.width, box.height) for box in boxes)
                # JPEG: decoded at 1/2, 1/4 or 1/8 scale when that still covers the largest box
                # (square, since the orientation may turn the image): a fraction of the memory.
                image.draft("RGB", (largest, largest))
                image.seek(0)
                frame = ImageOps.exif_transpose(image)
                frame.load()
        frame = _in_output_mode(frame, fmt)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        raise Undecodable(str(exc) or type(exc).__name__) from exc
    drawn: dict[str, tuple[bytes, tuple[int, int]]] = {}
    # Largest first: each smaller one is reduced from the previous result, not the original.
    source = frame
    for box in sorted(boxes, key=lambda box: box.width * box.height, reverse=True):
        thumb = source.copy()
        # reducing_gap: a cheap integer reduction first, then an antialiased resize.
        thumb.thumbnail((box.width, box.height), Image.Resampling.LANCZOS, reducing_gap=2.0)
        drawn[box.name] = (_encoded(thumb, fmt), thumb.size)
        if thumb.width >= box.width and thumb.height >= box.height:
            source = thumb
    return drawn


def _in_output_mode(image: Image.Image, fmt: str) -> Image.Image:
    transparent = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    if fmt == "jpeg":
        if not transparent:
            return image.convert("RGB") if image.mode != "RGB" else image
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, _BACKGROUND)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    if transparent:
        return image.convert("RGBA") if image.mode != "RGBA" else image
    return image.convert("RGB") if image.mode != "RGB" else image


def _encoded(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    options: dict[str, object] = {}
    if fmt in ("webp", "jpeg"):
        options["quality"] = _QUALITY
    if fmt == "png":
        options["optimize"] = True
    image.save(out, format=THUMB_FORMATS[fmt], **options)
    return out.getvalue()
