"""The local-folder store: media files in one folder, index and temporary files under
``.mediapipe/``; a file gets its final name by an atomic rename."""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from mediapipe._imaging import image_size
from mediapipe.store.index import ReuseIndex
from mediapipe.store.protocol import StorageError
from mediapipe.store.temp import TempFile, TempFolder

if TYPE_CHECKING:
    from pathlib import Path

    from mediapipe.store.files import FileFacts, StoredFile

META_DIR = ".mediapipe"


class FilesystemStore:
    """Media files in one local folder; index and temporary files under ``.mediapipe/``."""

    def __init__(self, root: Path, *, fsync: bool = False, deduplicate: bool = True) -> None:
        self.root = root
        self.fsync = fsync
        self.deduplicate = deduplicate
        self._temps = TempFolder(root / META_DIR / "tmp", fsync=fsync)
        self._index = ReuseIndex(root / META_DIR)
        self._folders: set[str] = set()

    def open(self, *, secondary: bool = False) -> None:
        """Prepare the folder and the index, and sweep. ``secondary`` for a second opener in
        the same crawl (the writer process): the first one checked, migrated and swept."""
        try:
            self._temps.prepare()
            self._index.open(secondary=secondary)
        except OSError as exc:
            raise StorageError(
                exc.errno, f"cannot create or write the media store {self.root}: {exc.strerror}"
            ) from exc
        if not secondary:
            self.sweep()

    def close(self) -> None:
        self._index.close()

    def sweep(self) -> int:
        """Remove temporary files of processes that no longer run; return how many."""
        return self._temps.sweep()

    def new_temp(self) -> TempFile:
        return self._temps.new_temp()

    def final_path(self, name: str) -> Path:
        """The path of ``name``, refusing anything that would leave the store: by its parts,
        and by where it resolves to (a symlink inside the store must not lead out)."""
        parts = name.replace("\\", "/").split("/")
        if any(part in {"", ".", ".."} for part in parts) or parts[0] == META_DIR:
            raise StorageError(f"file name {name!r} would leave the media store")
        path = self.root.joinpath(*parts)
        if len(parts) > 1:  # a built name has no folder: only a caller's target needs this
            root = os.path.realpath(self.root)
            resolved = os.path.realpath(path)
            meta = os.path.join(root, META_DIR)
            if os.path.commonpath([root, resolved]) != root or resolved.startswith(meta + os.sep):
                raise StorageError(f"file name {name!r} leads out of the media store")
        return path

    # -- DerivativeStore -------------------------------------------------------------------

    def stored_copy(self, path: str) -> contextlib.nullcontext[Path]:
        return contextlib.nullcontext(self.final_path(path))

    def derivative_size(self, path: str) -> tuple[int, int] | None:
        final = self.final_path(path)
        if not final.is_file():
            return None
        return image_size(final)

    def put_derivative(self, path: str, data: bytes, mime: str, size: tuple[int, int]) -> None:
        final = self.final_path(path)
        temp = self._temps.new_temp()
        try:
            temp.write(data)
            temp.close()
            self._ensure_folder(os.path.dirname(final))
            os.replace(temp.path, final)
        except OSError as exc:
            temp.discard()
            raise StorageError(exc.errno, f"cannot store {path}: {exc.strerror}") from exc

    def lookup(self, key: str) -> StoredFile | None:
        record = self._index.get(key)
        if record is None:
            return None
        try:
            size = os.stat(self.final_path(record.path)).st_size
        except OSError:
            return None
        return record if size == record.size else None

    def refresh(self, key: str, stored: StoredFile) -> StoredFile:
        fresh = stored.refreshed(time.time())
        self._index.touch(key, stored, fresh.stored_at)
        return fresh

    def commit(
        self,
        temp: TempFile,
        name: str,
        key: str,
        facts: FileFacts,
        *,
        may_share: bool = True,
    ) -> StoredFile:
        try:
            temp.close()
            final = self.final_path(name)
        except OSError:
            temp.discard()
            raise
        record = facts.stored(name, temp.size, temp.sha256, time.time())
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
        placed = self._linked_copy(record) if self.deduplicate else None
        try:
            os.replace(placed or temp.path, final)
        except OSError as exc:
            temp.discard()
            if placed is not None:
                with contextlib.suppress(OSError):
                    os.unlink(placed)
            self._index.forget(key, record)
            raise StorageError(exc.errno, f"cannot store {name}: {exc.strerror}") from exc
        if placed is None:
            return record
        temp.discard()
        return replace(record, deduplicated=True)

    def _linked_copy(self, record: StoredFile) -> str | None:
        """A new hard link, in the temporary folder, to a stored file with the same bytes.

        A hard link rather than an entry pointing at the other file: each source keeps the
        name the contract gives it, and replacing one source's file later (os.replace makes a
        new file) never changes another's. None when there is no such file or the file system
        takes no hard links: the body is then stored as it is."""
        for path in self._index.paths_with_content(record.sha256, record.size, record.path):
            link = self._temps.new_path()
            try:
                existing = self.final_path(path)
                os.link(existing, link)
                # The link pins one file; its bytes are checked, not trusted: another commit
                # may be between its index entry and its rename, over a file of the same size.
                if _sha256_of(link, record.size) == record.sha256:
                    return str(link)
            except OSError:
                pass  # gone meanwhile, or no hard links here: the next one, or a plain copy
            with contextlib.suppress(OSError):
                os.unlink(link)
        return None

    def _ensure_folder(self, folder: str) -> None:
        # One mkdir per folder per run, not per file: most files share a handful of folders.
        if folder not in self._folders:
            os.makedirs(folder, exist_ok=True)
            self._folders.add(folder)


_HASH_CHUNK = 1024 * 1024


def _sha256_of(path: Path, size: int) -> str | None:
    """The file's SHA-256, or None when it is not ``size`` bytes long (no need to read it)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        if os.fstat(stream.fileno()).st_size != size:
            return None
        while chunk := stream.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
