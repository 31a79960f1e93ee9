"""The last step of storing a validated body: its image header measured, the pixel limit
applied, then the store's commit. Imports no Scrapy: the writer process runs it too."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from mediapipe._imaging import TOO_MANY_PIXELS, image_size
from mediapipe.reasons import MediaError

if TYPE_CHECKING:
    from mediapipe.store.files import FileFacts, StoredFile
    from mediapipe.store.protocol import MediaStore
    from mediapipe.store.temp import TempFile


def commit_measured(
    store: MediaStore,
    temp: TempFile,
    name: str,
    key: str,
    facts: FileFacts,
    raster: bool,
    head: bytes,
    max_pixels: int,
    *,
    may_share: bool = True,
) -> StoredFile:
    """Measure a closed, validated image (refusing one past ``max_pixels``), then commit it."""
    size = image_size(temp.path, facts.mime, head) if raster else None
    if size == TOO_MANY_PIXELS or (size and max_pixels and size[0] * size[1] > max_pixels):
        temp.discard()
        raise MediaError("too-large", f"the image declares more than {max_pixels} pixels")
    if size:
        facts = replace(facts, width=size[0], height=size[1])
    return store.commit(temp, name, key, facts, may_share=may_share)
