"""The item pipeline: gives every item's ``images`` the copy_media treatment.

It orchestrates: which sources are fetched (contract §3), each distinct source once per crawl,
reuse of what the store holds (``reuse``), downloads (``downloads``), ``data:`` URIs
(``saving``), and the records, stats and log lines of the results.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from itemadapter import ItemAdapter
from scrapy import signals

from mediapipe.coordination.claims import ClaimBoard, ClaimedElsewhere
from mediapipe.coordination.config import ClaimConfig
from mediapipe.datauri import is_data_uri
from mediapipe.downloads import Downloader
from mediapipe.exceptions import MediaError
from mediapipe.loglines import (
    RootRelativeNote,
    debug_wanted,
    failure_line,
    internal_error_line,
    shown,
)
from mediapipe.naming import NameRule
from mediapipe.naming import source_hash as hash_source
from mediapipe.options import SPIDER_ATTRIBUTE, CallOptions
from mediapipe.preflight import check_components
from mediapipe.records import MediaRecord, RecordMaker
from mediapipe.reuse import Reuse
from mediapipe.saving import Saver
from mediapipe.settings import MediaConfig, report_setting_errors_in_one_line
from mediapipe.spool import Lanes
from mediapipe.stats import MediaStats
from mediapipe.store.registry import open_store, store_writer_threads
from mediapipe.thumbnails.builder import ThumbnailBuilder
from mediapipe.timers import TimerTrim
from mediapipe.writer_process import WriterProcess
from mediapipe.writer_process import supports as supports_writer_process

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from typing import Self

    from scrapy.crawler import Crawler

    from mediapipe.coordination.claims import SharedRecord
    from mediapipe.store.protocol import MediaStore

logger = logging.getLogger(__name__)

# A spider attribute: the Referer of its items' media when an item names no page.
REFERER_ATTRIBUTE = "media_referer"


class MediaPipeline:
    """Downloads the sources in each item's ``images`` and rewrites them to local URLs."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        # A bad setting stops the crawl at start: NotConfigured would only disable the pipeline
        # and let the crawl run on without its media.
        report_setting_errors_in_one_line()
        self.config = MediaConfig.from_settings(crawler.settings)
        check_components(crawler.settings, self.config)
        self.store: MediaStore = open_store(self.config, crawler.settings)
        self.call = CallOptions()
        self.stats = MediaStats(crawler.stats)
        self._lanes = Lanes(self.config.writer_threads or store_writer_threads(self.store))
        self._reuse = Reuse(self.config, self.store, self.stats)
        self._writer = (
            WriterProcess(self.store)
            if self.config.writer_process and supports_writer_process(self.store)
            else None
        )
        self._saver = Saver(self.config, self.store, self._lanes, self._writer)
        self._downloader = Downloader(crawler, self.config, self._saver, self._reuse, self.stats)
        self._records = RecordMaker(self.config)
        self._thumbnails = ThumbnailBuilder(self.config, self.store, self.stats)
        claims = ClaimConfig.from_settings(crawler.settings, crawler.spidercls.name)
        self._claims = ClaimBoard(claims, self.stats) if claims is not None else None
        # Finished sources by hash, without their source and URL strings: a data: URI source can
        # be megabytes, and a long crawl must not keep them all.
        self._done: OrderedDict[str, MediaRecord] = OrderedDict()
        self._pending: dict[str, asyncio.Future[MediaRecord]] = {}
        self._warned_missing_results_field: set[type] = set()
        self._root_relative = RootRelativeNote()
        self._timers = TimerTrim()
        # Items whose sources are resolved at once; later ones wait here, as a few bytes each.
        # Without a limit every item a spider yields at once (start() yields without pause)
        # holds a task per source waiting for a download place: 6 kB a source, 1.2 GB for
        # 200,000. Scrapy's CONCURRENT_ITEMS is the same limit for an item pipeline's work.
        self._items_gate = asyncio.Semaphore(max(1, crawler.settings.getint("CONCURRENT_ITEMS")))
        # After the stats dump, so that the summary is the crawl log's last line.
        crawler.signals.connect(self._log_summary, signal=signals.engine_stopped)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    # -- Scrapy hooks ------------------------------------------------------------------------

    async def open_spider(self) -> None:
        self.call = getattr(self.crawler.spider, SPIDER_ATTRIBUTE, None) or CallOptions()
        self._timers.start()
        if self.config.freeze_gc and gc.get_freeze_count() == 0:
            # What exists now (Scrapy, the project, their modules: most of the heap) lives as
            # long as the crawl; moved out of the collector's reach, it no longer makes each
            # full collection a reactor stall (69 ms in the benchmark's first second). The
            # garbage of the moment is collected first, so that none is frozen for good; and
            # only once per process, so that a second crawler in it never freezes the first
            # one's downloads in flight.
            gc.collect()
            gc.freeze()
        if self._claims is not None:
            await self._claims.open()

    async def close_spider(self) -> None:
        self._timers.stop()
        try:
            if self._claims is not None:
                await self._claims.close()
            # The writer first: a job it can no longer answer goes to the lanes, still open.
            if self._writer is not None:
                await self._writer.close()
            self._reuse.shutdown()
            self._thumbnails.shutdown()
            self._lanes.shutdown()
        finally:
            self.store.close()

    def _log_summary(self) -> None:
        self._root_relative.report()
        logger.info("%s", self.summary())

    def summary(self) -> str:
        """The one-line summary logged when the crawl ends."""
        return self.stats.summary()

    async def process_item(self, item: Any) -> Any:
        adapter = ItemAdapter(item)
        field = self.config.urls_field
        value = adapter.get(field) if field in adapter else None
        if value is None or value == [] or value == ():
            return item
        if isinstance(value, str):
            sources: list[Any] = [value]
        elif isinstance(value, list | tuple):
            sources = list(value)
        else:
            self.stats.inc("invalid_field")
            logger.warning(
                "Media field %r of %s has type %s, not a list of str: item left untouched",
                field,
                type(item).__name__,
                type(value).__name__,
            )
            return item
        tags = adapter.get(self.config.tags_field) if self.config.tags_field in adapter else None
        alt = adapter.get(self.config.alt_field) if self.config.alt_field in adapter else None
        referer = self._referer(adapter)
        resolving = (
            self.resolve(source, tags, _alt_for(alt, index), referer)
            for index, source in enumerate(sources)
        )
        if all(self._known(source) for source in sources):
            # Nothing to fetch or look up: no reason to wait behind items that download.
            records = await asyncio.gather(*resolving)
        else:
            async with self._items_gate:
                records = await asyncio.gather(*resolving)
        adapter[field] = [record.url for record in records]
        self._attach_records(adapter, item, records)
        self.stats.inc("items")
        for record in records:
            self.stats.source_done(record)
        return item

    # -- one source ----------------------------------------------------------------------------

    async def resolve(
        self, source: Any, tags: Any, alt: Any, referer: str | None = None
    ) -> MediaRecord:
        """The record of one source; each distinct source is handled once per crawl.
        ``referer``: the page the item came from, sent with the media request."""
        if not isinstance(source, str):
            return await self._guarded(source, None, tags, alt, None)
        key = hash_source(source)
        cached = self._done.get(key)
        if cached is not None:
            self._done.move_to_end(key)
            return self._records.for_source(cached, source, self.call)
        pending = self._pending.get(source)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[MediaRecord] = asyncio.get_running_loop().create_future()
        self._pending[source] = future
        try:
            record = await self._claimed(source, key, tags, alt, referer)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # the caller re-raises it; waiters get it too
            raise
        finally:
            del self._pending[source]
        future.set_result(record)
        self._remember(key, record)
        return record

    async def _claimed(
        self, source: str, key: str, tags: Any, alt: Any, referer: str | None
    ) -> MediaRecord:
        """With claims on (several workers), this worker downloads a source only while it
        holds its claim; otherwise it gets the record of the worker that resolved it."""
        claims = self._active_claims()
        if claims is None or _is_local_path(source):
            return await self._guarded(source, key, tags, alt, referer)
        while True:
            try:
                record = await self._guarded(source, key, tags, alt, referer)
            except ClaimedElsewhere as held:
                shared = held.record or await claims.wait(key)
                if shared is not None:
                    return await self._thumbnails.attach(self._shared(source, shared))
                continue  # its claim lapsed and is this worker's now: look and fetch again
            except BaseException:
                claims.release(key)
                raise
            claims.publish(key, record)
            return record

    def _claim_before_fetch(self, key: str) -> Callable[[], Awaitable[None]] | None:
        """What the downloader runs once it has a download place for the source: the claim,
        taken that late so that a worker holds claims only on what it is fetching."""
        claims = self._active_claims()
        if claims is None:
            return None

        async def claim() -> None:
            answer = await claims.claim(key)
            if answer is not True:
                raise ClaimedElsewhere(answer or None)

        return claim

    def _active_claims(self) -> ClaimBoard | None:
        """The claims, unless off or for a caller-chosen target, which is always written anew."""
        return None if self.call.target else self._claims

    def _shared(self, source: str, shared: SharedRecord) -> MediaRecord:
        if shared.status == "failed":
            # The worker that met the failure logged it; this worker's log says it too.
            logger.warning(
                "Media (failed: %s): %s (as worker %s found)", shared.reason, shown(source),
                shared.worker,
            )  # fmt: skip
        elif debug_wanted(logger):
            logger.debug("Media (uptodate, from worker %s): %s", shared.worker, shown(source))
        return self._records.of_shared(source, shared, self.call)

    async def _guarded(
        self, source: Any, key: str | None, tags: Any, alt: Any, referer: str | None
    ) -> MediaRecord:
        try:
            record = await self._handle(source, key, tags, alt, referer)
        except ClaimedElsewhere:
            raise
        except MediaError as failure:
            logger.warning("%s", failure_line(source, failure))
            record = _failed(source, failure.reason)
        except Exception as exc:
            # A bug of ours, not bad input: reported with its traceback; the crawl goes on and
            # the item's other sources are not affected.
            logger.error("%s", internal_error_line(source, exc), exc_info=exc)
            record = _failed(source, "internal")
        # Before a claim's record is published: other workers find the thumbnails made.
        return await self._thumbnails.attach(record)

    async def _handle(
        self, source: Any, key: str | None, tags: Any, alt: Any, referer: str | None
    ) -> MediaRecord:
        """``key`` is the source's hash, for a str source."""
        if source is None:
            return MediaRecord(source=None, url=None, path=None, status="local")
        if not isinstance(source, str):
            raise MediaError("unsupported-url", f"not a string but {type(source).__name__}")
        if _is_local_path(source):
            self._root_relative.note(source)
            return MediaRecord(source=source, url=source, path=None, status="local")
        key = key or hash_source(source)
        names = NameRule(key, tags, alt, self.config.max_name_bytes, self.call.target)
        url = "https:" + source if source.startswith("//") else source
        if is_data_uri(url):
            return await self._store_data_uri(source, names)
        _check_fetchable(url)
        # A caller-chosen target is always written anew.
        stored = None if self.call.target else await self._reuse.stored(key)
        if stored is not None and self._reuse.fresh(stored):
            if debug_wanted(logger):
                logger.debug("Media (uptodate): %s is %s", shown(source), stored.path)
            return self._records.of_stored(source, stored, "uptodate", self.call)
        stored, unchanged = await self._downloader.download(
            source, url, names, self.call, self._reuse.revalidatable(stored),
            before_fetch=self._claim_before_fetch(key), referer=referer,
        )  # fmt: skip
        if unchanged:
            if debug_wanted(logger):
                logger.debug("Media (uptodate, not modified): %s is %s", shown(source), stored.path)
            self.stats.inc("revalidated")
            return self._records.of_stored(source, stored, "uptodate", self.call)
        if debug_wanted(logger):
            logger.debug("Media (downloaded): %s as %s", shown(source), stored.path)
        self.stats.file_stored(stored)
        return self._records.of_stored(source, stored, "downloaded", self.call)

    async def _store_data_uri(self, source: str, names: NameRule) -> MediaRecord:
        reused = None if self.call.target else await self._reuse.stored(names.key)
        if reused is not None and self._reuse.fresh(reused):
            return self._records.of_stored(source, reused, "data", self.call)
        stored = await self._saver.save_data_uri(source, names)
        self.stats.file_stored(stored)
        return self._records.of_stored(source, stored, "data", self.call)

    # -- bookkeeping ---------------------------------------------------------------------------

    def _referer(self, adapter: ItemAdapter) -> str | None:
        """The URL of the item's page: its ``MEDIAPIPE_REFERER_FIELD``, else the spider's
        ``media_referer`` attribute."""
        field = self.config.referer_field
        page = adapter.get(field) if field is not None and field in adapter else None
        if page is None:
            page = getattr(self.crawler.spider, REFERER_ATTRIBUTE, None)
        return page if isinstance(page, str) and page.startswith(("http://", "https://")) else None

    def _known(self, source: Any) -> bool:
        """Whether ``source`` resolves with no request and no lookup: finished earlier in the
        crawl, or not a string to fetch (a failure, None, a local path)."""
        if not isinstance(source, str) or _is_local_path(source):
            return True
        return hash_source(source) in self._done

    def _remember(self, key: str, record: MediaRecord) -> None:
        self._done[key] = dataclasses.replace(record, source=None, url=None)
        if len(self._done) > self.config.cache_size:
            self._done.popitem(last=False)

    def _attach_records(self, adapter: ItemAdapter, item: Any, records: list[MediaRecord]) -> None:
        field = self.config.results_field
        if field is None:
            return
        try:
            adapter[field] = [record.as_dict() for record in records]
        except KeyError:
            self.stats.inc("results_field_missing")
            if type(item) not in self._warned_missing_results_field:
                self._warned_missing_results_field.add(type(item))
                logger.warning(
                    "%s has no field %r: media records are not attached to its items "
                    "(declare the field, or set MEDIAPIPE_RESULTS_FIELD = None)",
                    type(item).__name__,
                    field,
                )


def _check_fetchable(url: str) -> None:
    """Refuse what is not an absolute http(s) URL with a host (contract §3)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:
        raise MediaError("unsupported-url", str(exc)) from exc
    if not parts.scheme:
        raise MediaError(
            "unsupported-url",
            "a relative URL: join it to its page in the spider, "
            "e.g. response.urljoin(src), to have it downloaded",
        )
    if parts.scheme.lower() not in ("http", "https"):
        raise MediaError("unsupported-url", "only http(s), data: and local /paths are taken")
    if not host:
        raise MediaError("unsupported-url", "the URL names no host")


def _is_local_path(source: str) -> bool:
    """A root-relative path (contract §3.1): kept as it is, never fetched."""
    return source.startswith("/") and not source.startswith("//")


def _failed(source: Any, reason: str) -> MediaRecord:
    return MediaRecord(source=source, url=source, path=None, status="failed", reason=reason)


def _alt_for(alt: Any, index: int) -> Any:
    if isinstance(alt, list | tuple):
        return alt[index] if index < len(alt) else None
    return alt
