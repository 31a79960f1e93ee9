"""Image dimensions from the header: from the sniffed first bytes when they hold it, else from
the file; a declared bomb is reported, never decoded."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from typing import TYPE_CHECKING

import pytest
from PIL import Image

from mediapipe._imaging import TOO_MANY_PIXELS, image_size
from mediapipe.sniff import SNIFF_BYTES
from tests import media

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize(
    ("data", "mime", "size"),
    [
        (media.PNG, "image/png", (8, 6)),
        (media.JPEG, "image/jpeg", (10, 7)),
        (media.GIF, "image/gif", (4, 4)),
        (media.WEBP, "image/webp", (5, 3)),
    ],
)
def test_the_sniffed_head_gives_the_size_without_opening_the_file(
    tmp_path: Path, data: bytes, mime: str, size: tuple[int, int]
) -> None:
    missing = tmp_path / "never-written"
    assert image_size(missing, mime, data[:SNIFF_BYTES]) == size
    assert not missing.exists()


def jpeg_after_a_large_exif_block(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "blue").save(buffer, format="JPEG")
    plain = buffer.getvalue()
    # An APP1 segment of 60,000 bytes right after SOI pushes the frame header past the head.
    app1 = b"\xff\xe1" + struct.pack(">H", 60_002) + b"Exif\x00\x00" + bytes(59_994)
    return plain[:2] + app1 + plain[2:]


def test_a_header_past_the_head_is_read_from_the_file(tmp_path: Path) -> None:
    data = jpeg_after_a_large_exif_block((33, 21))
    path = tmp_path / "photo.jpg"
    path.write_bytes(data)
    assert image_size(path, "image/jpeg", data[:SNIFF_BYTES]) == (33, 21)
    missing = tmp_path / "missing.jpg"
    assert image_size(missing, "image/jpeg", data[:SNIFF_BYTES]) is None


def test_a_declared_bomb_is_reported_from_the_head(tmp_path: Path) -> None:
    png = bytearray(media.PNG)
    png[16:24] = struct.pack(">II", 100_000, 100_000)  # IHDR width and height
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))  # and its CRC
    assert image_size(tmp_path / "x", "image/png", bytes(png)) == TOO_MANY_PIXELS


def test_unreadable_bytes_have_no_size(tmp_path: Path) -> None:
    path = tmp_path / "noise"
    path.write_bytes(media.NOISE)
    assert image_size(path, "image/png", media.NOISE[:SNIFF_BYTES]) is None


def test_no_format_makes_pillow_load_all_its_plugins_mid_crawl(tmp_path: Path) -> None:
    # Pillow imports every plugin it has (tens of milliseconds) the first time it is asked for
    # a format not loaded yet; a fresh interpreter shows whether any stored format does that.
    bodies = {
        "image/png": media.PNG,
        "image/jpeg": media.JPEG,
        "image/gif": media.GIF,
        "image/webp": media.WEBP,
    }
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from mediapipe._imaging import image_size\n"
        "before = set(sys.modules)\n"
        f"for mime, data in {bodies!r}.items():\n"
        "    assert image_size(Path('missing'), mime, data) is not None, mime\n"
        "print(sorted(name for name in set(sys.modules) - before if name.startswith('PIL.')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"
