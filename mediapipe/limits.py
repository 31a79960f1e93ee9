"""Keeps media downloads within Scrapy's concurrency settings.

Scrapy 2.19's downloader starts every request queued in a slot at once when many arrive
together (``Downloader._process_queue`` schedules them as tasks before any counts as
transferring; see Scrapy issue #6982). An item pipeline that hands an item's sources to
``engine.download_async`` together therefore opened one connection per source and overflowed
the connection pool, so no connection was ever reused. Waiting here for a free place, per host
and in total, restores the limits the settings promise, and with them keep-alive.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from scrapy.settings import BaseSettings


class DownloadLimiter:
    """At most ``total`` media downloads at once, and ``per_host`` to any one host."""

    def __init__(self, total: int, per_host: int, slots: dict[str, Any] | None = None) -> None:
        self._total = asyncio.Semaphore(total) if total > 0 else None
        self._per_host = per_host
        self._slot_concurrency = {
            name: int(options["concurrency"])
            for name, options in (slots or {}).items()
            if isinstance(options, dict) and options.get("concurrency")
        }
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._users: dict[str, int] = {}

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> DownloadLimiter:
        return cls(
            settings.getint("CONCURRENT_REQUESTS"),
            settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN"),
            settings.getdict("DOWNLOAD_SLOTS"),
        )

    @asynccontextmanager
    async def place(self, host: str) -> AsyncIterator[None]:
        """Hold a place for one download from ``host`` while the block runs."""
        semaphore = self._hosts.get(host)
        if semaphore is None:
            semaphore = asyncio.Semaphore(self._slot_concurrency.get(host, self._per_host) or 1)
            self._hosts[host] = semaphore
        self._users[host] = self._users.get(host, 0) + 1
        try:
            async with semaphore:
                if self._total is None:
                    yield
                else:
                    async with self._total:
                        yield
        finally:
            self._users[host] -= 1
            if not self._users[host]:
                # Hosts come and go on long crawls; keep only those in use.
                del self._users[host], self._hosts[host]
