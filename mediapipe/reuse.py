"""Whether a source is stored already, still acceptable, and fresh (contract §8): the store's
lookups, off the reactor thread."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from mediapipe.mediatypes import ContentTypeVerdict, classify_content_type
from mediapipe.store.registry import store_lookup_threads

if TYPE_CHECKING:
    from mediapipe.settings import MediaConfig
    from mediapipe.stats import MediaStats
    from mediapipe.store.files import StoredFile
    from mediapipe.store.protocol import MediaStore

logger = logging.getLogger(__name__)

DAY_S = 86400


class Reuse:
    """Asks the store about sources; its lookups run on threads of their own."""

    def __init__(self, config: MediaConfig, store: MediaStore, stats: MediaStats) -> None:
        self.config = config
        self.store = store
        self.stats = stats
        self._lookup_warned = False
        # Not the lanes: a lookup must not queue behind a large file's writes. A store whose
        # lookups wait on a network (a bucket) may ask for more threads.
        self._executor = ThreadPoolExecutor(
            store_lookup_threads(store), thread_name_prefix="mediapipe-lookup"
        )

    async def stored(self, key: str) -> StoredFile | None:
        """The stored file of this source, of any age, if the current settings would still
        accept it."""
        loop = asyncio.get_running_loop()
        try:
            stored = await loop.run_in_executor(self._executor, self.store.lookup, key)
        except OSError as exc:
            # Not knowing costs a download, not a file: the source is fetched and stored anew.
            self.stats.inc("lookup_failed")
            level = logging.DEBUG if self._lookup_warned else logging.WARNING
            self._lookup_warned = True
            logger.log(
                level,
                "The store could not say whether a source is stored (%s): downloading it; "
                "further lookup failures are logged at DEBUG (stat mediapipe/lookup_failed)",
                exc,
            )
            return None
        if stored is None:
            return None
        max_size = self.config.max_size
        if max_size and stored.size > max_size:
            return None
        if stored.mime is not None and (
            classify_content_type(stored.mime, self.config.media_types) is ContentTypeVerdict.REFUSE
        ):
            return None
        return stored

    def fresh(self, stored: StoredFile) -> bool:
        """Younger than ``MEDIAPIPE_EXPIRES`` days: reused with no request."""
        return time.time() - stored.stored_at <= self.config.expires_days * DAY_S

    @staticmethod
    def revalidatable(stored: StoredFile | None) -> StoredFile | None:
        """An expired file the server gave validators for: asked about, not fetched blindly."""
        if stored is not None and (stored.etag or stored.last_modified):
            return stored
        return None

    async def refresh(self, key: str, stored: StoredFile) -> StoredFile:
        """The server said ``stored`` is unchanged: its age starts again."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.store.refresh, key, stored)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)
