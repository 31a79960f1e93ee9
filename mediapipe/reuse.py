"""Whether a source is stored already, still acceptable, and fresh (contract §8): the store's
lookups, off the reactor thread."""

from __future__ import annotations

import asyncio
import functools
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
        self._threads = store_lookup_threads(store)
        self._executor = ThreadPoolExecutor(self._threads, thread_name_prefix="mediapipe-lookup")
        # Started now rather than by the first item's lookups: a thread's start waits for the
        # new thread to run, which the first burst of a crawl can make a stall of its own.
        self._executor.submit(_nothing)
        self._asked: dict[str, list[asyncio.Future[StoredFile | None]]] = {}

    async def stored(self, key: str) -> StoredFile | None:
        """The stored file of this source, of any age, if the current settings would still
        accept it."""
        try:
            stored = await self._lookup(key)
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
        if (max_size and stored.size > max_size) or not self.config.size_rule.accepts(stored):
            return None
        if stored.mime is not None and (
            classify_content_type(stored.mime, self.config.media_types) is ContentTypeVerdict.REFUSE
        ):
            return None
        return stored

    def _lookup(self, key: str) -> asyncio.Future[StoredFile | None]:
        """The store's answer for ``key``. The keys asked for in one turn of the event loop
        (an item's sources start together) go to the lookup threads as one job per thread:
        a thread hand-off each way costs the reactor thread more than a local lookup does."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[StoredFile | None] = loop.create_future()
        if not self._asked:
            loop.call_soon(self._send_lookups, loop)
        self._asked.setdefault(key, []).append(answer)
        return answer

    def _send_lookups(self, loop: asyncio.AbstractEventLoop) -> None:
        asked, self._asked = self._asked, {}
        keys = list(asked)
        share = -(-len(keys) // self._threads)
        for first in range(0, len(keys), share):
            batch = keys[first : first + share]
            settle = functools.partial(_settle_lookups, asked, batch)
            try:
                job = loop.run_in_executor(self._executor, _look_up_all, self.store, batch)
            except RuntimeError as exc:  # the executor was shut down: the crawl is closing
                failed: asyncio.Future[list[Answer]] = loop.create_future()
                failed.set_exception(exc)
                settle(failed)
                continue
            job.add_done_callback(settle)

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


def _nothing() -> None:
    """The first job of the lookup thread, which starts it."""


# A lookup's stored file, or the exception it raised (an OSError of the store, or a bug).
Answer = tuple["StoredFile | None", Exception | None]


def _look_up_all(store: MediaStore, keys: list[str]) -> list[Answer]:
    answers: list[Answer] = []
    for key in keys:
        try:
            answers.append((store.lookup(key), None))
        except Exception as exc:  # each source gets its own answer, whatever the others got
            answers.append((None, exc))
    return answers


def _settle_lookups(
    asked: dict[str, list[asyncio.Future[StoredFile | None]]],
    keys: list[str],
    job: asyncio.Future[list[Answer]],
) -> None:
    failed = asyncio.CancelledError() if job.cancelled() else job.exception()
    answers = job.result() if failed is None else [(None, failed)] * len(keys)
    for key, (stored, error) in zip(keys, answers, strict=True):
        for future in asked[key]:
            if future.done():
                continue  # its caller was cancelled
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(stored)
