"""Where stored media live: a small store protocol and the local-folder store.

Bytes reach a store only through :class:`TempFile`, chunk by chunk as they arrive; a file gets
its final name only by an atomic rename after it was validated (contract §7.4).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import time
from typing import TYPE_CHECKING, BinaryIO, Protocol

from mediapipe.index import ReuseIndex, StoredFile

if TYPE_CHECKING:
    from pathlib import Path

_META_DIR = ".mediapipe"


class StorageError(OSError):
    """The store could not take a file (full disk, permissions, bad target)."""


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


class MediaStore(Protocol):
    """What the pipeline needs from a place that keeps media files."""

    root: Path

    def open(self) -> None:
        """Prepare the store and sweep what a killed run left behind."""

    def new_temp(self) -> TempFile:
        """A fresh temporary file that will receive one body."""

    def lookup(self, key: str, max_age_days: float) -> StoredFile | None:
        """The stored file for this source key, if present and fresh enough."""

    def commit(
        self,
        temp: TempFile,
        name: str,
        key: str,
        *,
        mime: str | None,
        width: int | None,
        height: int | None,
        credentials: bool,
    ) -> StoredFile:
        """Give a validated temporary file its final name and remember it under ``key``."""

    def close(self) -> None:
        """Release what :meth:`open` took (the index's connections)."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class FilesystemStore:
    """Media files in one local folder; index and temporary files under ``.mediapipe/``."""

    def __init__(self, root: Path, *, fsync: bool = False) -> None:
        self.root = root
        self._fsync = fsync
        self._tmp = root / _META_DIR / "tmp"
        self._index = ReuseIndex(root / _META_DIR)
        self._folders: set[str] = set()

    def open(self) -> None:
        try:
            self._tmp.mkdir(parents=True, exist_ok=True)
            probe = self.new_temp()
            probe.write(b"")  # creates it: the folder must take files
            probe.discard()
            self._index.open()
        except OSError as exc:
            raise StorageError(
                exc.errno, f"cannot create or write the media store {self.root}: {exc.strerror}"
            ) from exc
        self.sweep()

    def close(self) -> None:
        self._index.close()

    def sweep(self) -> int:
        """Remove temporary files of processes that no longer run; return how many."""
        removed = 0
        for entry in os.scandir(self._tmp):
            owner = entry.name.split("-", 1)[0]
            if owner.isdigit() and _pid_alive(int(owner)) and int(owner) != 0:
                if int(owner) != os.getpid():
                    continue
                # Our own pid: a previous run in a reused pid cannot be running any more,
                # because this process is the one holding that pid now.
                if entry.name.startswith(f"{os.getpid()}-{_RUN_TAG}"):
                    continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed += 1
        return removed

    def new_temp(self) -> TempFile:
        name = f"{os.getpid()}-{_RUN_TAG}-{secrets.token_hex(8)}.part"
        return TempFile(self._tmp / name, fsync=self._fsync)

    def final_path(self, name: str) -> Path:
        """The path of ``name``, refusing anything that would leave the store: by its parts,
        and by where it resolves to (a symlink inside the store must not lead out)."""
        parts = name.replace("\\", "/").split("/")
        if any(part in {"", ".", ".."} for part in parts) or parts[0] == _META_DIR:
            raise StorageError(f"file name {name!r} would leave the media store")
        path = self.root.joinpath(*parts)
        if len(parts) > 1:  # a built name has no folder: only a caller's target needs this
            root = os.path.realpath(self.root)
            resolved = os.path.realpath(path)
            meta = os.path.join(root, _META_DIR)
            if os.path.commonpath([root, resolved]) != root or resolved.startswith(meta + os.sep):
                raise StorageError(f"file name {name!r} leads out of the media store")
        return path

    def lookup(self, key: str, max_age_days: float) -> StoredFile | None:
        if max_age_days <= 0:
            return None
        record = self._index.get(key)
        if record is None:
            return None
        try:
            size = os.stat(self.final_path(record.path)).st_size
        except OSError:
            return None
        if size != record.size or time.time() - record.stored_at > max_age_days * 86400:
            return None
        return record

    def commit(
        self,
        temp: TempFile,
        name: str,
        key: str,
        *,
        mime: str | None,
        width: int | None,
        height: int | None,
        credentials: bool,
    ) -> StoredFile:
        try:
            temp.close()
            final = self.final_path(name)
        except OSError:
            temp.discard()
            raise
        record = StoredFile(
            path=name.replace("\\", "/"),
            size=temp.size,
            sha256=temp.sha256,
            mime=mime,
            width=width,
            height=height,
            stored_at=time.time(),
            credentials=credentials,
        )
        # The index entry is committed first: if it cannot be, nothing reaches a final name and
        # no good file already there is replaced. An entry whose rename then fails (or whose
        # process is killed before the rename) points at a file of another size, or none,
        # which lookup treats as not stored.
        try:
            self._ensure_folder(os.path.dirname(final))
            self._index.put(key, record)
        except OSError as exc:
            temp.discard()
            raise StorageError(exc.errno, f"cannot store {name}: {exc.strerror}") from exc
        try:
            os.replace(temp.path, final)
        except OSError as exc:
            temp.discard()
            self._index.forget(key, record)
            raise StorageError(exc.errno, f"cannot store {name}: {exc.strerror}") from exc
        return record

    def _ensure_folder(self, folder: str) -> None:
        # One mkdir per folder per run, not per file: most files share a handful of folders.
        if folder not in self._folders:
            os.makedirs(folder, exist_ok=True)
            self._folders.add(folder)


# Distinguishes this process's temporary files from those of an earlier process that had the
# same pid (pids are reused), so the sweep at start never keeps a dead run's leftovers.
_RUN_TAG = secrets.token_hex(4)
