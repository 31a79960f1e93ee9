"""The deterministic corpus under ``bench/.work/corpus`` and its manifest.

Every file depends only on the seed and its own index, so a smaller run (``--quick``) uses the
first files of the full corpus and a larger one adds to it. The manifest remembers size,
modification time and SHA-256 of each file; a file whose size or mtime changed is made again.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import random
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from PIL import Image

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

GENERATOR_VERSION = 1
SEED = 20240521
MIB = 1024 * 1024

SMALL_MIN = 5 * 1000
SMALL_MAX = 200 * 1000
EXTENSIONLESS_EVERY = 10  # one small image in ten has no extension (octet-stream)
LARGE_SIZE = 200 * MIB
HUGE_SIZE = 1024 * MIB
_BLOCK = 4 * MIB

# format: (Pillow name, mode, extension, save options, estimated bytes per pixel of noise)
_IMAGE_FORMATS: tuple[tuple[str, str, str, dict[str, object], float], ...] = (
    ("JPEG", "RGB", ".jpg", {"quality": 90}, 1.1),
    ("PNG", "RGB", ".png", {"compress_level": 1}, 3.0),
    ("GIF", "P", ".gif", {}, 1.4),
    ("WEBP", "RGB", ".webp", {"quality": 80, "method": 0}, 0.7),
)


@dataclass(frozen=True, slots=True)
class Entry:
    """One corpus file: its path relative to the corpus root (= its URL path)."""

    path: str
    size: int
    sha256: str
    mtime_ns: int


def small_path(index: int) -> str:
    name = f"small/img-{index:05d}"
    if index % EXTENSIONLESS_EVERY == EXTENSIONLESS_EVERY - 3:
        return name
    return name + _IMAGE_FORMATS[_small_format(index)][2]


def large_path(index: int) -> str:
    return f"large/clip-{index}.mp4"


HUGE_PATH = "huge/movie-1g.mp4"


def _small_format(index: int) -> int:
    return random.Random(f"{SEED}:format:{index}").randrange(len(_IMAGE_FORMATS))


def _small_image(index: int) -> bytes:
    """A noise image of a size drawn log-uniformly between 5 and 200 kB (noise barely
    compresses, so the encoded size lands near the target)."""
    rng = random.Random(f"{SEED}:small:{index}")
    target = math.exp(rng.uniform(math.log(SMALL_MIN), math.log(SMALL_MAX)))
    aspect = rng.uniform(0.5, 2.0)
    name, mode, _ext, options, per_pixel = _IMAGE_FORMATS[_small_format(index)]
    data = b""
    for _attempt in range(3):
        pixels = max(64, target / per_pixel)
        width = max(8, round(math.sqrt(pixels * aspect)))
        height = max(8, round(pixels / width))
        channels = 1 if mode == "P" else 3
        image = Image.frombytes(mode, (width, height), rng.randbytes(width * height * channels))
        if mode == "P":
            image.putpalette(rng.randbytes(768))
        buffer = io.BytesIO()
        image.save(buffer, name, **options)
        data = buffer.getvalue()
        ratio = len(data) / target
        if 0.85 < ratio < 1.15:
            break
        per_pixel *= ratio
    return data


def _mp4_header(total: int) -> bytes:
    """An ISO-BMFF ``ftyp`` box (brand isom) and the header of an ``mdat`` box to the end."""
    ftyp = b"ftyp" + b"isom" + (0x200).to_bytes(4, "big") + b"isom" + b"iso2" + b"mp41"
    ftyp = (len(ftyp) + 4).to_bytes(4, "big") + ftyp
    mdat_size = total - len(ftyp)
    if mdat_size >= 2**32:
        raise ValueError("the corpus's videos stay under 4 GiB")
    return ftyp + mdat_size.to_bytes(4, "big") + b"mdat"


def _write_video(target: Path, size: int, seed: str) -> None:
    """Header, then a random 4 MiB block repeated with each block's number stamped in."""
    block = bytearray(random.Random(seed).randbytes(_BLOCK))
    header = _mp4_header(size)
    with target.open("wb") as out:
        out.write(header)
        written = len(header)
        number = 0
        while written < size:
            block[:8] = number.to_bytes(8, "big")
            count = min(_BLOCK, size - written)
            out.write(memoryview(block)[:count])
            written += count
            number += 1


def _make(root: Path, path: str) -> None:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.with_name(target.name + ".tmp")
    if path.startswith("small/"):
        scratch.write_bytes(_small_image(int(path.split("-")[1].split(".")[0])))
    elif path.startswith("large/"):
        _write_video(scratch, LARGE_SIZE, f"{SEED}:{path}")
    elif path == HUGE_PATH:
        _write_video(scratch, HUGE_SIZE, f"{SEED}:{path}")
    else:
        raise ValueError(f"no recipe for {path}")
    os.replace(scratch, target)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


class Corpus:
    """The corpus folder (served by nginx as its root) and its manifest."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.manifest_path = root / "manifest.json"
        self.entries: dict[str, Entry] = {}
        if self.manifest_path.exists():
            try:
                data = json.loads(self.manifest_path.read_text("utf-8"))
                if data.get("version") == GENERATOR_VERSION and data.get("seed") == SEED:
                    self.entries = {e["path"]: Entry(**e) for e in data["files"]}
            except (ValueError, KeyError, TypeError):
                self.entries = {}

    def _valid(self, path: str, rehash: bool) -> bool:
        entry = self.entries.get(path)
        if entry is None:
            return False
        try:
            stat = (self.root / path).stat()
        except OSError:
            return False
        if stat.st_size != entry.size or stat.st_mtime_ns != entry.mtime_ns:
            return False
        return not rehash or sha256_file(self.root / path) == entry.sha256

    def ensure(self, paths: Iterable[str], *, rehash: bool = False) -> int:
        """Make every missing or changed file; return how many were made."""
        made = 0
        for path in paths:
            if self._valid(path, rehash):
                continue
            _make(self.root, path)
            stat = (self.root / path).stat()
            self.entries[path] = Entry(
                path, stat.st_size, sha256_file(self.root / path), stat.st_mtime_ns
            )
            made += 1
            if made % 200 == 0:
                self.save()
        if made:
            self.save()
        return made

    def save(self) -> None:
        data = {
            "version": GENERATOR_VERSION,
            "seed": SEED,
            "files": [asdict(entry) for entry in sorted(self.entries.values(), key=_key)],
        }
        scratch = self.manifest_path.with_suffix(".tmp")
        self.root.mkdir(parents=True, exist_ok=True)
        scratch.write_text(json.dumps(data, indent=0), "utf-8")
        os.replace(scratch, self.manifest_path)

    def warm(self, paths: Iterable[str]) -> None:
        """Read the files once so that nginx serves them from the page cache."""
        for path in paths:
            with (self.root / path).open("rb") as source:
                while source.read(8 * MIB):
                    pass


def _key(entry: Entry) -> str:
    return entry.path
