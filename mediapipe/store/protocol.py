"""What the pipeline needs from a place that keeps media files, and how a store says no.

Bytes reach a store only through a :class:`~mediapipe.store.temp.TempFile`, chunk by chunk as
they arrive; a file gets its final name only once it was validated (contract §7.4).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from pathlib import Path

    from mediapipe.store.files import FileFacts, StoredFile
    from mediapipe.store.temp import TempFile


class StorageError(OSError):
    """The store could not take a file (full disk, permissions, bad target)."""


class MediaStore(Protocol):
    """What the pipeline needs from a place that keeps media files."""

    root: Path

    def open(self) -> None:
        """Prepare the store and sweep what a killed run left behind."""

    def new_temp(self) -> TempFile:
        """A fresh temporary file that will receive one body."""

    def lookup(self, key: str) -> StoredFile | None:
        """The stored file for this source key, if it is present and whole, of any age."""

    def commit(
        self,
        temp: TempFile,
        name: str,
        key: str,
        facts: FileFacts,
        *,
        may_share: bool = True,
    ) -> StoredFile:
        """Give a validated temporary file its final name and remember it under ``key``.

        A store that finds the same bytes already stored may keep them once and return a
        record with ``deduplicated`` set; its path may then be another file's, unless
        ``may_share`` is false (a name the caller chose must hold the file itself)."""

    def refresh(self, key: str, stored: StoredFile) -> StoredFile:
        """Start the age of a stored file again: the server said it has not changed."""

    def close(self) -> None:
        """Release what :meth:`open` took (the index's connections)."""


@runtime_checkable
class DerivativeStore(Protocol):
    """A store that also keeps files made from its stored files (thumbnails), under paths of
    their own. The methods run on worker threads; each raises OSError when the store fails."""

    def stored_copy(self, path: str) -> AbstractContextManager[Path]:
        """A local file with the bytes stored at ``path``, for as long as the context lasts."""

    def derivative_size(self, path: str) -> tuple[int, int] | None:
        """The pixel size of the derivative at ``path``, or None when it is not there."""

    def put_derivative(self, path: str, data: bytes, mime: str, size: tuple[int, int]) -> None:
        """Store ``data`` at ``path`` whole, replacing what was there."""
