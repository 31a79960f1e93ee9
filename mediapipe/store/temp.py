"""The temporary file a body streams into before it is validated and committed."""

from __future__ import annotations

import contextlib
import hashlib
import os
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from pathlib import Path


class TempFile:
    """A temporary file inside the store that hashes what is written to it.

    The file is created by its first write, so that a worker thread, not the reactor thread,
    pays for the creation (a few hundred microseconds each on a busy file system).
    """

    def __init__(self, path: Path, fsync: bool = False) -> None:
        self.path = path
        self.size = 0
        self._fsync = fsync
        self._hash = hashlib.sha256()
        self._file: BinaryIO | None = None
        self._closed = False

    def _opened(self) -> BinaryIO:
        if self._file is None:
            self._file = self.path.open("xb")
        return self._file

    def write(self, data: bytes | memoryview) -> None:
        self._opened().write(data)
        self._hash.update(data)
        self.size += len(data)

    def read_head(self, count: int) -> bytes:
        if self._file is not None and not self._file.closed:
            self._file.flush()
        with self.path.open("rb") as reader:
            return reader.read(count)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        file = self._opened()
        file.flush()
        if self._fsync:
            os.fsync(file.fileno())
        file.close()
        self._closed = True

    def discard(self) -> None:
        self._closed = True
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
