"""Stores: where media files and their reuse index live.

``protocol`` says what a store must do and ``files`` what it knows of a stored file; ``local``
and ``s3`` are the two built-in stores, ``index`` the local store's SQLite reuse index,
``uploads`` the S3 store's journal of multipart uploads, ``temp`` the files a body streams
into, and ``registry`` opens the store a ``MEDIAPIPE_STORE`` value names.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mediapipe.store.files import FileFacts, StoredFile
from mediapipe.store.local import FilesystemStore
from mediapipe.store.protocol import MediaStore, StorageError
from mediapipe.store.temp import TempFile

if TYPE_CHECKING:
    from mediapipe.store.registry import STORE_SCHEMES, join_store, open_store, store_scheme

__all__ = [
    "STORE_SCHEMES",
    "FileFacts",
    "FilesystemStore",
    "MediaStore",
    "StorageError",
    "StoredFile",
    "TempFile",
    "join_store",
    "open_store",
    "store_scheme",
]

# The registry imports Scrapy: loaded on first use, so that the writer process does not.
_REGISTRY = frozenset({"STORE_SCHEMES", "join_store", "open_store", "store_scheme"})


def __getattr__(name: str) -> Any:
    if name not in _REGISTRY:
        raise AttributeError(f"module 'mediapipe.store' has no attribute {name!r}")
    value = getattr(importlib.import_module("mediapipe.store.registry"), name)
    globals()[name] = value
    return value
