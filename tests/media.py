"""Real media bytes for the tests, made with Pillow and the standard library."""

from __future__ import annotations

import io
import wave

from PIL import Image


def image_bytes(fmt: str, size: tuple[int, int] = (8, 6), color: str = "red") -> bytes:
    buffer = io.BytesIO()
    mode = "RGBA" if fmt in {"PNG", "WEBP", "ICO"} else "RGB"
    Image.new(mode, size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def wav_bytes(frames: int = 800) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(1)
        writer.setframerate(8000)
        writer.writeframes(bytes(range(256)) * (frames // 256) + bytes(frames % 256))
    return buffer.getvalue()


PNG = image_bytes("PNG")
JPEG = image_bytes("JPEG", (10, 7), "blue")
GIF = image_bytes("GIF", (4, 4), "green")
WEBP = image_bytes("WEBP", (5, 3), "yellow")
WAV = wav_bytes()
# An MP4 header: an ftyp box with the isom brand, then an empty mdat box.
MP4 = (
    b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
    + b"\x00\x00\x00\x08mdat"
    + bytes(range(200))
)
SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"></svg>'
HTML = b"<!doctype html><html><body>a page, not an image</body></html>"
JSON = b'{"error": "not an image"}'
NOISE = bytes((i * 7919 + 13) % 256 for i in range(3000))
