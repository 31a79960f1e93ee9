"""Stores: where media files and their reuse index live.

``protocol`` says what a store must do, ``local`` and ``s3`` are the two built-in stores,
``index`` is the local store's SQLite reuse index, ``temp`` the file a body streams into, and
``registry`` opens the store a ``MEDIAPIPE_STORE`` value names.
"""

from mediapipe.store.index import StoredFile
from mediapipe.store.local import FilesystemStore
from mediapipe.store.protocol import MediaStore, StorageError
from mediapipe.store.registry import STORE_SCHEMES, join_store, open_store, store_scheme
from mediapipe.store.temp import TempFile

__all__ = [
    "STORE_SCHEMES",
    "FilesystemStore",
    "MediaStore",
    "StorageError",
    "StoredFile",
    "TempFile",
    "join_store",
    "open_store",
    "store_scheme",
]
