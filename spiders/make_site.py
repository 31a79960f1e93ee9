"""Regenerate the binary samples of the offline demo site under ``spiders/site/media``.

Run with ``python spiders/make_site.py``. Images (JPEG, PNG, GIF, WebP and the extensionless
``photo-raw``) are drawn with Pillow, ``beep.wav`` is written with the standard ``wave`` module,
and the compressed audio/video samples (``chime.mp3``, ``chime.ogg``, ``clip.mp4``,
``clip.webm``) are encoded with the ``ffmpeg`` command lines below. ffmpeg is only needed to
regenerate those four files; the generated files are committed, so nothing at run time needs it.

The HTML pages (``index.html``, ``gallery.html``, ``sounds.html``) are hand-written and not
touched by this script; :func:`data_uri_png` prints the inline image they embed.
"""

from __future__ import annotations

import argparse
import base64
import io
import math
import shutil
import struct
import subprocess
import sys
import wave
from pathlib import Path

from PIL import Image, ImageDraw

SITE = Path(__file__).resolve().parent / "site"
MEDIA = SITE / "media"

NOT_AN_IMAGE = "<!doctype html><html><body>not an image</body></html>\n"

# Flags shared by every ffmpeg run: no banner, no prompt, single thread and bit-exact
# output without metadata so that the result only depends on the ffmpeg build.
FFMPEG_COMMON = ["-hide_banner", "-loglevel", "error", "-y", "-threads", "1"]
FFMPEG_BITEXACT = ["-map_metadata", "-1", "-fflags", "+bitexact", "-flags", "+bitexact"]
CHIME_SOURCE = ["-f", "lavfi", "-i", "sine=frequency=880:sample_rate=22050:duration=0.4"]
CLIP_SOURCE = ["-f", "lavfi", "-i", "testsrc=size=32x32:rate=8:duration=1"]

FFMPEG_JOBS: dict[str, list[str]] = {
    "chime.mp3": [*CHIME_SOURCE, "-ac", "1", "-c:a", "libmp3lame", "-b:a", "32k"],
    "chime.ogg": [*CHIME_SOURCE, "-ac", "1", "-c:a", "libvorbis", "-q:a", "0"],
    "clip.mp4": [
        *CLIP_SOURCE,
        "-c:v", "libx264", "-preset", "veryslow", "-crf", "30",
        "-pix_fmt", "yuv420p", "-movflags", "+faststart",
    ],
    "clip.webm": [
        *CLIP_SOURCE,
        "-c:v", "libvpx", "-b:v", "64k", "-deadline", "good", "-cpu-used", "0",
        "-pix_fmt", "yuv420p",
    ],
}  # fmt: skip


def draw_cat(size: tuple[int, int], background: str) -> Image.Image:
    """Draw a simple cartoon cat face scaled to ``size``."""
    width, height = size
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)

    def box(x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int]:
        return (round(x0 * width), round(y0 * height), round(x1 * width), round(y1 * height))

    def pt(x: float, y: float) -> tuple[int, int]:
        return (round(x * width), round(y * height))

    fur, dark = "#f0a040", "#402010"
    draw.polygon([pt(0.28, 0.45), pt(0.30, 0.08), pt(0.45, 0.30)], fill=fur, outline=dark)
    draw.polygon([pt(0.72, 0.45), pt(0.70, 0.08), pt(0.55, 0.30)], fill=fur, outline=dark)
    draw.ellipse(box(0.22, 0.22, 0.78, 0.95), fill=fur, outline=dark)
    draw.ellipse(box(0.36, 0.45, 0.44, 0.58), fill="#208020")
    draw.ellipse(box(0.56, 0.45, 0.64, 0.58), fill="#208020")
    draw.polygon([pt(0.47, 0.66), pt(0.53, 0.66), pt(0.50, 0.71)], fill="#e06080")
    for dy in (-0.04, 0.0, 0.04):
        draw.line([pt(0.40, 0.70), pt(0.10, 0.70 + dy)], fill=dark)
        draw.line([pt(0.60, 0.70), pt(0.90, 0.70 + dy)], fill=dark)
    return image


def make_cat_jpg(path: Path) -> None:
    draw_cat((64, 48), "#a0d0f0").save(path, "JPEG", quality=85, optimize=True)


def make_photo_raw(path: Path) -> None:
    """A JPEG without an extension: a small sunset landscape."""
    image = Image.new("RGB", (48, 32), "#204080")
    draw = ImageDraw.Draw(image)
    for y in range(20):
        shade = 80 + y * 8
        draw.line([(0, y), (47, y)], fill=(min(255, shade + 60), shade, 120 - y * 3))
    draw.ellipse((18, 12, 30, 24), fill="#ffd040")
    draw.rectangle((0, 20, 47, 31), fill="#306030")
    draw.polygon([(0, 20), (14, 10), (26, 20)], fill="#405040")
    image.save(path, "JPEG", quality=85, optimize=True)


def make_square_png(path: Path) -> None:
    Image.new("RGB", (32, 32), (255, 0, 0)).save(path, "PNG", optimize=True)


def make_spinner_gif(path: Path) -> None:
    """Three 16x16 frames of a dot turning around the centre, looping forever."""
    frames: list[Image.Image] = []
    for index in range(3):
        frame = Image.new("P", (16, 16), 0)
        frame.putpalette([255, 255, 255, 0, 0, 0, 0, 120, 255] + [0, 0, 0] * 253)
        draw = ImageDraw.Draw(frame)
        draw.ellipse((1, 1, 14, 14), outline=1)
        angle = index * 2 * math.pi / 3 - math.pi / 2
        cx, cy = 7.5 + 5 * math.cos(angle), 7.5 + 5 * math.sin(angle)
        draw.ellipse((round(cx - 2), round(cy - 2), round(cx + 2), round(cy + 2)), fill=2)
        frames.append(frame)
    frames[0].save(
        path, "GIF", save_all=True, append_images=frames[1:], duration=150, loop=0, disposal=2
    )


def make_leaf_webp(path: Path) -> None:
    image = Image.new("RGB", (40, 30), "#fff8e0")
    draw = ImageDraw.Draw(image)
    draw.ellipse((6, 5, 34, 25), fill="#d06010", outline="#803000")
    draw.line([(4, 27), (36, 3)], fill="#603010", width=1)
    image.save(path, "WEBP", quality=80, method=6)


def make_not_an_image(path: Path) -> None:
    path.write_text(NOT_AN_IMAGE, encoding="utf-8")


def make_beep_wav(path: Path) -> None:
    """0.2 s of a 1 kHz tone, 8 kHz mono 16-bit PCM, with short fades to avoid clicks."""
    rate, seconds, frequency = 8000, 0.2, 1000.0
    count = int(rate * seconds)
    fade = rate // 100
    samples = bytearray()
    for n in range(count):
        envelope = min(1.0, n / fade, (count - 1 - n) / fade)
        value = 0.5 * envelope * math.sin(2 * math.pi * frequency * n / rate)
        samples += struct.pack("<h", round(value * 32767))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(samples))


def data_uri_png() -> str:
    """The tiny PNG embedded as ``data:image/png;base64,...`` in ``gallery.html``."""
    buffer = io.BytesIO()
    Image.new("RGB", (2, 2), (0, 128, 255)).save(buffer, "PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def run_ffmpeg(ffmpeg: str, name: str) -> None:
    command = [ffmpeg, *FFMPEG_COMMON, *FFMPEG_JOBS[name], *FFMPEG_BITEXACT, str(MEDIA / name)]
    print("  $", " ".join(command[1:]))
    subprocess.run(command, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--skip-ffmpeg",
        action="store_true",
        help="only regenerate the files that need no ffmpeg (images, WAV, mismatch page)",
    )
    args = parser.parse_args(argv)

    MEDIA.mkdir(parents=True, exist_ok=True)
    builders = {
        "cat.jpg": make_cat_jpg,
        "square.png": make_square_png,
        "spinner.gif": make_spinner_gif,
        "leaf.webp": make_leaf_webp,
        "photo-raw": make_photo_raw,
        "not-an-image.png": make_not_an_image,
        "beep.wav": make_beep_wav,
    }
    for name, build in builders.items():
        build(MEDIA / name)
        print(f"wrote media/{name}")

    if args.skip_ffmpeg:
        print("skipped ffmpeg samples:", ", ".join(FFMPEG_JOBS))
    else:
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg is None:
            print(
                "error: ffmpeg was not found on PATH; it is needed to regenerate "
                + ", ".join(f"media/{name}" for name in FFMPEG_JOBS)
                + ".\nInstall it (e.g. `apt-get install ffmpeg`) or rerun with --skip-ffmpeg "
                "to keep the committed copies.",
                file=sys.stderr,
            )
            return 1
        for name in FFMPEG_JOBS:
            run_ffmpeg(ffmpeg, name)
            print(f"wrote media/{name}")

    print("data URI used in gallery.html:", data_uri_png())
    return 0


if __name__ == "__main__":
    sys.exit(main())
