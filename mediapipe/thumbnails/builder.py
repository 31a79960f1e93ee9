"""Gives each record of a stored raster image its thumbnails (``MEDIAPIPE_THUMBS``): those the
store has already are found again, the missing ones are drawn on worker threads of their own
and stored next to the originals, under ``thumbnails/<name>/``."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from mediapipe.loglines import shown
from mediapipe.records import local_url
from mediapipe.settings import SettingError
from mediapipe.store.protocol import DerivativeStore
from mediapipe.thumbnails.render import EXTENSION_OF_FORMAT, MIME_OF_FORMAT, Undecodable, render

if TYPE_CHECKING:
    from mediapipe.records import MediaRecord
    from mediapipe.settings import MediaConfig, ThumbBox
    from mediapipe.stats import MediaStats
    from mediapipe.store.protocol import MediaStore

logger = logging.getLogger(__name__)

FOLDER = "thumbnails"
# Raster images Pillow draws; SVG is a vector image, scaled by whoever shows it.
_NOT_RASTER = frozenset({"image/svg+xml"})


def thumbnail_path(stored_path: str, box_name: str, fmt: str) -> str:
    """Where the ``box_name`` thumbnail of the file stored at ``stored_path`` is: the same
    name in ``thumbnails/<box_name>/``, with the thumbnail format's extension."""
    stem = PurePosixPath(stored_path).with_suffix("")
    return f"{FOLDER}/{box_name}/{stem}.{EXTENSION_OF_FORMAT[fmt]}"


@dataclasses.dataclass(frozen=True, slots=True)
class _Outcome:
    sizes: dict[str, tuple[int, int]]  # by box name, every box
    built: int


class _Missing(Exception):
    """The thumbnails could not be made; ``reason`` says why, in one word."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class ThumbnailBuilder:
    """Attaches thumbnails to records; a no-op without ``MEDIAPIPE_THUMBS``."""

    def __init__(self, config: MediaConfig, store: MediaStore, stats: MediaStats) -> None:
        self.config = config
        self.boxes = config.thumbs
        self.stats = stats
        self._store: DerivativeStore | None = None
        self._executor: ThreadPoolExecutor | None = None
        if not self.boxes:
            return
        if not isinstance(store, DerivativeStore):
            raise SettingError(
                f"MEDIAPIPE_THUMBS: the store {config.store} ({type(store).__name__}) cannot "
                "keep thumbnails (it has no stored_copy, derivative_size and put_derivative)"
            )
        self._store = store
        # Threads of their own: drawing takes milliseconds of CPU per image (Pillow lets go of
        # the GIL while it decodes and resizes), which must not hold up the writer lanes. Their
        # number bounds the images decoded at once, and so the memory.
        self._executor = ThreadPoolExecutor(
            config.thumbs_threads, thread_name_prefix="mediapipe-thumbs"
        )

    async def attach(self, record: MediaRecord) -> MediaRecord:
        """``record`` with its thumbnails. A freshly downloaded file's are drawn anew (an old
        file of the same name may have had other bytes); others' are reused when present."""
        if self._executor is None:
            return record
        if record.path is None or not _raster(record.mime):
            return dataclasses.replace(record, thumbnails={}, thumbnails_reason=None)
        path = record.path
        redraw = record.status == "downloaded"
        loop = asyncio.get_running_loop()
        try:
            outcome = await loop.run_in_executor(self._executor, self._make, path, redraw)
        except _Missing as missing:
            self.stats.inc(f"thumbnails/failed/{missing.reason}")
            logger.warning(
                "Media thumbnails not made (%s): %s, stored as %s: %s",
                missing.reason,
                shown(record.source),
                path,
                missing,
            )
            return dataclasses.replace(record, thumbnails={}, thumbnails_reason=missing.reason)
        except Exception as exc:
            # A bug of ours: the original stays stored and the crawl goes on.
            self.stats.inc("thumbnails/failed/internal")
            logger.error(
                "Media thumbnails not made (internal error, a bug): %s, stored as %s: %r",
                shown(record.source),
                path,
                exc,
                exc_info=exc,
            )
            return dataclasses.replace(record, thumbnails={}, thumbnails_reason="internal")
        if outcome.built:
            self.stats.inc("thumbnails/built", outcome.built)
        reused = len(self.boxes) - outcome.built
        if reused:
            self.stats.inc("thumbnails/reused", reused)
        return dataclasses.replace(
            record, thumbnails=self._described(path, outcome.sizes), thumbnails_reason=None
        )

    def _described(self, path: str, sizes: dict[str, tuple[int, int]]) -> dict[str, Any]:
        fmt = self.config.thumbs_format
        described = {}
        for box in self.boxes:
            where = thumbnail_path(path, box.name, fmt)
            width, height = sizes[box.name]
            described[box.name] = {
                # The URL prefix stands for the thumbnails folder, as /media/ for the store.
                "url": local_url(self.config.thumbs_url_prefix, where.removeprefix(FOLDER + "/")),
                "path": where,
                "width": width,
                "height": height,
            }
        return described

    def _make(self, path: str, redraw: bool) -> _Outcome:
        """On a thumbnail thread: find or draw every box's thumbnail of ``path``."""
        store = self._store
        assert store is not None
        fmt = self.config.thumbs_format
        sizes: dict[str, tuple[int, int]] = {}
        missing: list[ThumbBox] = []
        try:
            for box in self.boxes:
                found = (
                    None if redraw else store.derivative_size(thumbnail_path(path, box.name, fmt))
                )
                if found is None:
                    missing.append(box)
                else:
                    sizes[box.name] = found
            if not missing:
                return _Outcome(sizes, 0)
            with store.stored_copy(path) as original:
                drawn = render(original, tuple(missing), fmt)
            for name, (data, size) in drawn.items():
                store.put_derivative(
                    thumbnail_path(path, name, fmt), data, MIME_OF_FORMAT[fmt], size
                )
                sizes[name] = size
        except Undecodable as exc:
            raise _Missing("undecodable", str(exc)) from exc
        except OSError as exc:
            raise _Missing("storage", str(exc)) from exc
        return _Outcome(sizes, len(missing))

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)


def _raster(mime: str | None) -> bool:
    return mime is not None and mime.startswith("image/") and mime not in _NOT_RASTER
