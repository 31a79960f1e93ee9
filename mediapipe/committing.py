"""The last step of storing a validated body: the size rules applied (the pixel limit, the
minimum bytes, width and height), then the store's commit. Imports no Scrapy: the writer
process runs it too."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from mediapipe._imaging import TOO_MANY_PIXELS, image_size
from mediapipe.reasons import MediaError

if TYPE_CHECKING:
    from mediapipe.store.files import FileFacts, StoredFile
    from mediapipe.store.protocol import MediaStore
    from mediapipe.store.temp import TempFile


@dataclass(frozen=True, slots=True)
class SizeRule:
    """How large a stored file may or must be; 0 switches a bound off."""

    max_pixels: int = 0
    min_size: int = 0  # bytes, any medium
    min_width: int = 0  # pixels, raster images
    min_height: int = 0

    def refusal(self, size: int, pixels: tuple[int, int] | None) -> MediaError | None:
        """Why a body of ``size`` bytes and ``pixels`` (None: not a measured image) may not
        be stored, or None."""
        if pixels == TOO_MANY_PIXELS or (
            pixels and self.max_pixels and pixels[0] * pixels[1] > self.max_pixels
        ):
            return MediaError("too-large", f"the image declares more than {self.max_pixels} pixels")
        if size < self.min_size:
            return MediaError(
                "too-small", f"{size} bytes, under MEDIAPIPE_MIN_SIZE = {self.min_size}"
            )
        if pixels and (pixels[0] < self.min_width or pixels[1] < self.min_height):
            return MediaError(
                "too-small",
                f"{pixels[0]}x{pixels[1]} pixels, under MEDIAPIPE_MIN_WIDTH x MEDIAPIPE_MIN_HEIGHT"
                f" = {self.min_width}x{self.min_height}",
            )
        return None

    def accepts(self, stored: StoredFile) -> bool:
        """Whether a file stored earlier still passes the current minimums (contract §8)."""
        pixels = None if stored.width is None or stored.height is None else (
            stored.width, stored.height
        )  # fmt: skip
        return self.refusal(stored.size, pixels) is None


def commit_measured(
    store: MediaStore,
    temp: TempFile,
    name: str,
    key: str,
    facts: FileFacts,
    raster: bool,
    head: bytes,
    rule: SizeRule,
    *,
    may_share: bool = True,
) -> StoredFile:
    """Measure a closed, validated image, refuse what ``rule`` refuses, then commit it."""
    pixels = image_size(temp.path, facts.mime, head) if raster else None
    refusal = rule.refusal(temp.size, pixels)
    if refusal is not None:
        temp.discard()
        raise refusal
    if pixels:
        facts = replace(facts, width=pixels[0], height=pixels[1])
    return store.commit(temp, name, key, facts, may_share=may_share)
