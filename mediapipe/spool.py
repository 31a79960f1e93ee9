"""Writes and hashes a body on worker threads while the reactor goes on receiving.

File writes and SHA-256 both release the GIL, so moving them off the reactor thread lets other
downloads proceed while a large body is being stored. Each file belongs to one *lane*, a
single worker thread, so its chunks are written in order and whatever is queued for the file
afterwards (closing, measuring, committing it) runs only once every chunk is on disk, with no
waiting and no extra round trip. A producer that runs ahead of the disk is paused.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Executor

    from mediapipe.store.temp import TempFile

# Bytes queued for one file before its producer is paused, and the level to resume at.
HIGH_WATER = 4 * 1024 * 1024
LOW_WATER = 1024 * 1024
# Bytes gathered before the first write is handed to the lane. Most images are smaller: their
# body is then written, hashed, measured and committed in one lane job instead of two, which
# halves the thread hand-offs per file. Memory stays bounded: this much per download at most.
COALESCE = 256 * 1024


class Lanes:
    """A fixed set of single-thread workers; each file is given one of them in turn."""

    def __init__(self, count: int) -> None:
        self._lanes = [
            ThreadPoolExecutor(1, thread_name_prefix=f"mediapipe-lane{n}") for n in range(count)
        ]
        self._turn = itertools.cycle(self._lanes)

    def pick(self) -> Executor:
        return next(self._turn)

    def shutdown(self) -> None:
        for lane in self._lanes:
            lane.shutdown(wait=True)


class Spool:
    """The queue of chunks between the reactor thread and one :class:`TempFile`."""

    def __init__(self, temp: TempFile, executor: Executor) -> None:
        self.temp = temp
        self._executor = executor
        self._loop = asyncio.get_running_loop()
        self._lock = threading.Lock()
        self._chunks: deque[bytes] = deque()
        self._queued = 0
        self._writing = False
        self._error: BaseException | None = None
        self._pause: Callable[[], None] | None = None
        self._resume: Callable[[], None] | None = None
        self._paused = False
        self._below_high: asyncio.Future[None] | None = None

        self._discarded = False
        self._handed_over = False

    def gathered(self) -> tuple[bytes, ...] | None:
        """Every chunk so far, when none was handed to the lane yet (a small body): the whole
        body is then in memory, and may be written elsewhere than through this spool."""
        with self._lock:
            return None if self._handed_over or self._error else tuple(self._chunks)

    def discard(self) -> None:
        """Drop queued chunks and the temporary file, now or when the worker is done."""
        with self._lock:
            self._chunks.clear()
            self._queued = 0
            self._discarded = True
            busy = self._writing
        if not busy:
            self.temp.discard()

    def attach_producer(self, pause: Callable[[], None], resume: Callable[[], None]) -> None:
        """Let the spool pause the network producer while the disk catches up."""
        self._pause, self._resume = pause, resume

    def write(self, data: bytes) -> None:
        """Queue one chunk (reactor thread); raises the error of an earlier failed write."""
        if self._error is not None:
            raise self._error
        with self._lock:
            if self._discarded:
                return
            self._chunks.append(data)
            self._queued += len(data)
            start = not self._writing and self._queued > COALESCE
            self._writing = self._writing or start
            over = self._queued > HIGH_WATER
        if start:
            self._handed_over = True
            self._executor.submit(self._drain)
        if over and self._pause is not None and not self._paused:
            self._paused = True
            self._pause()

    async def wait_below_high_water(self) -> None:
        """For producers that can simply wait (an async iterator of chunks)."""
        with self._lock:
            if self._queued <= HIGH_WATER:
                return
            self._below_high = self._loop.create_future()
            waiter = self._below_high
        await waiter

    def complete(self) -> None:
        """On the file's lane, after every job queued for it: write what is still gathered,
        then raise the first write error, if any (an ``OSError``, or the unexpected exception
        itself)."""
        with self._lock:
            gathered = bool(self._chunks) and not self._writing
            self._writing = self._writing or gathered
        if gathered:
            self._drain()
        if self._error is not None:
            raise self._error

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._chunks:
                    self._writing = False
                    discarded = self._discarded
                    break
                chunk = self._chunks.popleft()
            if self._error is None:
                try:
                    self.temp.write(chunk)
                except ValueError as exc:  # written after a close: the file is unusable
                    self._error = OSError(str(exc))
                except Exception as exc:
                    # Kept, never lost in the executor's future: complete() raises it, so a
                    # file missing a chunk is never committed.
                    self._error = exc
            with self._lock:
                was_high = self._queued > LOW_WATER
                self._queued -= len(chunk)
                eased = was_high and self._queued <= LOW_WATER
            if eased:
                self._loop.call_soon_threadsafe(self._eased)
        if discarded:
            self.temp.discard()

    def _eased(self) -> None:
        if self._paused and self._resume is not None:
            self._paused = False
            self._resume()
        waiter, self._below_high = self._below_high, None
        _settle(waiter)


def _settle(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)
