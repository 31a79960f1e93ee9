"""Which store a ``MEDIAPIPE_STORE`` value names: a URI scheme picks a store class, anything else
is a local folder.

``MEDIAPIPE_STORE_SCHEMES`` adds or overrides schemes: ``{"scheme": "package.module.Class"}``
(or the class itself). A store class has ``from_config(config, settings)`` returning an
unopened :class:`~mediapipe.store.protocol.MediaStore`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapy.utils.misc import load_object

from mediapipe.settings import SettingError
from mediapipe.store.local import FilesystemStore
from mediapipe.store.protocol import StorageError

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

    from mediapipe.settings import MediaConfig
    from mediapipe.store.protocol import MediaStore

STORE_SCHEMES: dict[str, str] = {
    "s3": "mediapipe.store.s3.S3Store",
}


def store_scheme(value: str) -> str | None:
    """The URI scheme of a store value, or None for a local path (``C:\\x`` included)."""
    scheme = urlsplit(value).scheme
    return scheme if len(scheme) > 1 and value.startswith(f"{scheme}://") else None


def join_store(store: str, folder: str) -> str:
    """``folder`` inside ``store``, for a local path or a URI alike."""
    if store_scheme(store) is None:
        return str(Path(store) / folder)
    return store.rstrip("/") + "/" + folder + "/"


def open_store(config: MediaConfig, settings: BaseSettings) -> MediaStore:
    """The opened store of ``config.store``; a store that cannot be used is a SettingError."""
    value = str(config.store)
    scheme = store_scheme(value)
    store: MediaStore
    if scheme is None:
        store = FilesystemStore(
            config.store,  # type: ignore[arg-type]
            fsync=config.fsync,
            deduplicate=config.deduplicate,
        )
    else:
        schemes: dict[str, Any] = {**STORE_SCHEMES, **(settings.getdict("MEDIAPIPE_STORE_SCHEMES"))}
        if scheme not in schemes:
            raise SettingError(
                f"MEDIAPIPE_STORE = {value!r}: no store for {scheme}:// "
                f"(known: {', '.join(sorted(schemes))}; see MEDIAPIPE_STORE_SCHEMES)"
            )
        try:
            store_class = load_object(schemes[scheme])
        except (ImportError, NameError, ValueError) as exc:
            raise SettingError(
                f"MEDIAPIPE_STORE_SCHEMES: cannot load the store for {scheme}://: {exc}"
            ) from exc
        store = store_class.from_config(config, settings)
    try:
        store.open()
    except StorageError as exc:
        raise SettingError(f"MEDIAPIPE_STORE = {value!r}: {exc}") from exc
    return store


# Stores may say how many threads suit them: one that waits on a network (a bucket) wants
# more than one that writes to a local disk. Optional attributes, so that a plug-in store
# needs neither.
DEFAULT_WRITER_THREADS = 2
DEFAULT_LOOKUP_THREADS = 1


def store_writer_threads(store: MediaStore) -> int:
    """Writer threads for ``store`` when ``MEDIAPIPE_WRITER_THREADS`` is not set."""
    return int(getattr(store, "writer_threads", DEFAULT_WRITER_THREADS))


def store_lookup_threads(store: MediaStore) -> int:
    """Threads that ask ``store`` whether sources are stored."""
    return int(getattr(store, "lookup_threads", DEFAULT_LOOKUP_THREADS))


def store_commits_over_network(store: MediaStore) -> bool:
    """Whether a commit into ``store`` waits on a network (a bucket's requests), so that a
    download need not hold its place through it."""
    return bool(getattr(store, "commit_waits_on_network", False))
