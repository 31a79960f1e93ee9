"""Temporary files: the file a body streams into before it is validated and committed, and
the folder that holds them, swept of what killed runs left behind."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import time
from typing import TYPE_CHECKING, BinaryIO

from mediapipe.store.processes import owner_may_run, owner_tag

if TYPE_CHECKING:
    from pathlib import Path

_NUMBERS = itertools.count()


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
        if self._file is None:
            return  # never written: there is no file
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class TempFolder:
    """The folder of temporary files, named ``h<host>b<boot>-<pid>-<run tag>-<n>.part``."""

    def __init__(self, folder: Path, *, fsync: bool = False) -> None:
        self.folder = folder
        self._fsync = fsync

    def prepare(self) -> None:
        """Create the folder and check that it takes files (raises OSError)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        probe = self.new_temp()
        probe.write(b"")  # creates it
        probe.discard()

    def new_temp(self) -> TempFile:
        return TempFile(self.new_path(), fsync=self._fsync)

    def new_path(self) -> Path:
        # Unique by machine, pid, run tag and a counter of this process: no random bytes to ask
        # the system for, and every body gets a path, though most small ones are never written.
        return self.folder / f"{owner_tag()}-{next(_NUMBERS):x}.part"

    def sweep(self) -> int:
        """Remove the temporary files no live process can still be writing; return how many."""
        removed = 0
        now = time.time()
        for entry in os.scandir(self.folder):
            try:
                age = now - entry.stat(follow_symlinks=False).st_mtime
            except FileNotFoundError:
                continue
            if owner_may_run(entry.name, age):
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed += 1
        return removed
