"""The item pipeline: gives every item's ``images`` the copy_media treatment."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import Counter, OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from itemadapter import ItemAdapter
from scrapy import Request, signals
from scrapy.exceptions import IgnoreRequest

from mediapipe._imaging import TOO_MANY_PIXELS, image_size
from mediapipe.datauri import BadDataURI, is_data_uri, open_data_uri
from mediapipe.exceptions import RETRIED_REASONS, MediaError, reason_for
from mediapipe.limits import DownloadLimiter
from mediapipe.mediatypes import ContentTypeVerdict, classify_content_type
from mediapipe.middleware import META_KEY, REDIRECT_STATUSES
from mediapipe.naming import (
    build_name,
    choose_extension,
    epoch_from_headers,
    make_label,
    retry_after_seconds,
)
from mediapipe.naming import source_hash as hash_source
from mediapipe.options import SPIDER_ATTRIBUTE, CallOptions
from mediapipe.preflight import check_components
from mediapipe.records import MediaRecord, local_url, with_provenance
from mediapipe.settings import MediaConfig, report_setting_errors_in_one_line
from mediapipe.sniff import SNIFF_BYTES, Verdict, judge_body
from mediapipe.spool import Lanes
from mediapipe.store.registry import open_store
from mediapipe.transfer import Transfer, refusal_for

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from concurrent.futures import Executor
    from typing import Self

    from scrapy.crawler import Crawler
    from scrapy.http import Headers

    from mediapipe.store.index import StoredFile
    from mediapipe.store.protocol import MediaStore
    from mediapipe.store.temp import TempFile

logger = logging.getLogger(__name__)


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
        self._limiter = DownloadLimiter.from_settings(crawler.settings)
        self._lanes = Lanes(self.config.writer_threads)
        # Index lookups read SQLite and stat a file: off the reactor thread, and not queued
        # behind a lane's large writes.
        self._lookups = ThreadPoolExecutor(1, thread_name_prefix="mediapipe-lookup")
        # Finished sources by hash, without their source and URL strings: a data: URI source can
        # be megabytes, and a long crawl must not keep them all.
        self._done: OrderedDict[str, MediaRecord] = OrderedDict()
        self._pending: dict[str, asyncio.Future[MediaRecord]] = {}
        self._counts: Counter[str] = Counter()
        self._warned_missing_results_field: set[type] = set()
        self._root_relative = _RootRelative()
        # After the stats dump, so that the summary is the crawl log's last line.
        crawler.signals.connect(self._log_summary, signal=signals.engine_stopped)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    # -- Scrapy hooks ------------------------------------------------------------------------

    def open_spider(self) -> None:
        self.call = getattr(self.crawler.spider, SPIDER_ATTRIBUTE, None) or CallOptions()

    def close_spider(self) -> None:
        self._lookups.shutdown(wait=True)
        self._lanes.shutdown()
        self.store.close()

    def _log_summary(self) -> None:
        self._root_relative.report()
        logger.info("%s", self.summary())

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
            self._inc("invalid_field")
            logger.warning(
                "Media field %r of %s has type %s, not a list of str: item left untouched",
                field,
                type(item).__name__,
                type(value).__name__,
            )
            return item
        tags = adapter.get(self.config.tags_field) if self.config.tags_field in adapter else None
        alt = adapter.get(self.config.alt_field) if self.config.alt_field in adapter else None
        records = await asyncio.gather(
            *(
                self.resolve(source, tags, _alt_for(alt, index))
                for index, source in enumerate(sources)
            )
        )
        adapter[field] = [record.url for record in records]
        self._attach_records(adapter, item, records)
        self._inc("items")
        for record in records:
            self._count(record)
        return item

    # -- one source ----------------------------------------------------------------------------

    async def resolve(self, source: Any, tags: Any, alt: Any) -> MediaRecord:
        """The record of one source; each distinct source is handled once per crawl."""
        if not isinstance(source, str):
            return await self._guarded(source, None, tags, alt)
        key = hash_source(source)
        cached = self._done.get(key)
        if cached is not None:
            self._done.move_to_end(key)
            return self._with_source(cached, source)
        pending = self._pending.get(source)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[MediaRecord] = asyncio.get_running_loop().create_future()
        self._pending[source] = future
        try:
            record = await self._guarded(source, key, tags, alt)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # the caller re-raises it; waiters get it too
            raise
        finally:
            del self._pending[source]
        future.set_result(record)
        self._remember(key, record)
        return record

    async def _guarded(self, source: Any, key: str | None, tags: Any, alt: Any) -> MediaRecord:
        try:
            return await self._handle(source, key, tags, alt)
        except MediaError as failure:
            logger.warning("%s", failure_line(source, failure))
            reason = failure.reason
        except Exception as exc:
            # A bug of ours, not bad input: reported with its traceback; the crawl goes on and
            # the item's other sources are not affected.
            self._log_internal(source, exc)
            reason = "internal"
        return MediaRecord(source=source, url=source, path=None, status="failed", reason=reason)

    def _log_internal(self, source: Any, exc: BaseException) -> None:
        logger.error(
            "Media (failed: internal): %s (an unexpected error in mediapipe: %s: %s)",
            shown(source),
            type(exc).__name__,
            exc,
            exc_info=exc,
        )

    async def _handle(self, source: Any, key: str | None, tags: Any, alt: Any) -> MediaRecord:
        """``key`` is the source's hash, for a str source."""
        if source is None:
            return MediaRecord(source=None, url=None, path=None, status="local")
        if not isinstance(source, str):
            raise MediaError("unsupported-url", f"not a string but {type(source).__name__}")
        if source.startswith("/") and not source.startswith("//"):
            self._root_relative.note(source)
            return MediaRecord(source=source, url=source, path=None, status="local")
        key = key or hash_source(source)
        url = "https:" + source if source.startswith("//") else source
        if is_data_uri(url):
            return await self._store_data_uri(source, key, tags, alt)
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
        stored = await self._stored(key)
        if stored is not None and self._fresh(stored):
            logger.debug("Media (uptodate): %s is %s", shown(source), stored.path)
            return self._record(source, stored, "uptodate")
        # An expired file the server gave validators for is asked about, not fetched blindly.
        known = stored if stored is not None and (stored.etag or stored.last_modified) else None
        return await self._download(source, url, key, tags, alt, known)

    def _fresh(self, stored: StoredFile) -> bool:
        return time.time() - stored.stored_at <= self.config.expires_days * 86400

    async def _stored(self, key: str) -> StoredFile | None:
        """The stored file of this source, of any age, if the current settings would still
        accept it (contract §8); a caller-chosen target is always written anew."""
        if self.call.target:
            return None
        loop = asyncio.get_running_loop()
        stored = await loop.run_in_executor(self._lookups, self.store.lookup, key)
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

    async def _download(
        self, source: str, url: str, key: str, tags: Any, alt: Any, known: StoredFile | None
    ) -> MediaRecord:
        """Fetch and store a source; ``known`` is an expired stored copy to revalidate."""
        host = urlsplit(url).hostname or ""
        attempt = 0
        while True:
            try:
                stored, revalidated = await self._attempt(source, url, host, key, tags, alt, known)
                break
            except MediaError as failure:
                if attempt >= self.config.retry_times or failure.reason not in RETRIED_REASONS:
                    if attempt:
                        self._inc("retry/max_reached")
                    raise
                attempt += 1
                self._inc("retry/count")
                self._inc(f"retry/reason/{failure.reason}")
                delay = self._retry_delay(attempt, failure.retry_after)
                logger.debug(
                    "Media (retry %d in %.2f s: %s): %s",
                    attempt,
                    delay,
                    failure.reason,
                    shown(source),
                )
                await asyncio.sleep(delay)
        if revalidated:
            logger.debug("Media (uptodate, not modified): %s is %s", shown(source), stored.path)
            self._inc("revalidated")
            return self._record(source, stored, "uptodate")
        logger.debug("Media (downloaded): %s as %s", shown(source), stored.path)
        self._count_file(stored)
        return self._record(source, stored, "downloaded")

    async def _attempt(
        self,
        source: str,
        url: str,
        host: str,
        key: str,
        tags: Any,
        alt: Any,
        known: StoredFile | None,
    ) -> tuple[StoredFile, bool]:
        """The stored file, and whether it is ``known`` found unchanged by the server."""
        # The place is held until the file is committed: bytes still queued for the disk count
        # against the limit, so a disk slower than the network cannot make memory grow.
        async with self._limiter.place(host):
            config = self.config
            transfer = Transfer(
                source, self.store, self._lanes.pick(), config.media_types, config.max_size
            )
            if self.call.headers:
                transfer.restrict_headers(host, self.call.headers)
            try:
                return await self._fetch_and_store(url, key, transfer, tags, alt, known)
            except Exception as exc:
                transfer.discard()
                failure: MediaError | None
                if isinstance(exc, IgnoreRequest) and transfer.last_status in REDIRECT_STATUSES:
                    # Scrapy's redirect middleware gave up (too many hops): the final answer
                    # was a redirect, so the failure is that status, not a network error.
                    failure = MediaError(f"http-{transfer.last_status}", str(exc))
                else:
                    failure = reason_for(exc)
                if failure is None:
                    raise  # a bug: _guarded reports it as internal, with its traceback
                failure.retry_after = failure.retry_after or transfer.retry_after
                raise failure from exc

    def _retry_delay(self, attempt: int, retry_after: str | None) -> float:
        delay = self.config.retry_backoff * 2 ** (attempt - 1)
        if retry_after:
            delay = max(delay, retry_after_seconds(retry_after))
        return min(delay, self.config.retry_max_delay)

    async def _fetch_and_store(
        self, url: str, key: str, transfer: Transfer, tags: Any, alt: Any, known: StoredFile | None
    ) -> tuple[StoredFile, bool]:
        assert self.crawler.engine is not None
        request = self._request(url, transfer, known)
        response = await self.crawler.engine.download_async(request)
        if response.status == 304 and known is not None:
            loop = asyncio.get_running_loop()
            try:
                fresh = await loop.run_in_executor(self._lookups, self.store.refresh, key, known)
            except OSError as exc:
                raise MediaError("storage", str(exc)) from exc
            return fresh, True
        if not 200 <= response.status < 300 or response.status == 206:
            # The URL is in the log line already; only a redirect's target is worth adding.
            final = f"from {response.url}" if response.url != url else ""
            raise MediaError(f"http-{response.status}", final)
        if not transfer.finished:
            await transfer.finish()
        assert transfer.temp is not None
        assert transfer.verdict is not None
        epoch = epoch_from_headers(
            response.headers.get(b"Last-Modified"), response.headers.get(b"Date")
        )
        ext = choose_extension(transfer.verdict.ext, transfer.declared, response.url)
        name = self._name(key, epoch, ext, tags, alt)
        credentials = transfer.used_credentials or self.call.carries_credentials
        stored = await self._save(
            transfer.lane,
            transfer.temp,
            name,
            key,
            transfer.verdict,
            transfer.check_written,
            credentials=credentials,
            validators=validators_of(response.headers),
        )
        return stored, False

    def _request(self, url: str, transfer: Transfer, known: StoredFile | None) -> Request:
        meta: dict[str, Any] = {
            META_KEY: transfer,
            "allow_offsite": True,
            # Size limits are the middleware's, with the contract's reason words.
            "download_maxsize": 0,
            "download_warnsize": 0,
            # Scrapy's HTTP cache (whose middleware runs before ours) would store the body the
            # streaming handlers never keep, an empty one, and serve it back later; the
            # store's index is the media cache.
            "dont_cache": True,
        }
        if self.call.proxy:
            meta["proxy"] = self.call.proxy
        cookies: dict[str | bytes, str | bytes | bool | float | int] = {
            name: value for name, value in self.call.cookies.items()
        }
        headers: dict[str, str] = dict(self.call.headers)
        if known is not None:
            if known.etag:
                headers["If-None-Match"] = known.etag
            if known.last_modified:
                headers["If-Modified-Since"] = known.last_modified
        try:
            return Request(
                url,
                meta=meta,
                headers=headers or None,
                cookies=cookies or None,
                dont_filter=True,
            )
        except ValueError as exc:
            raise MediaError("unsupported-url", str(exc)) from exc

    def _name(self, key: str, epoch: int, ext: str, tags: Any, alt: Any) -> str:
        if self.call.target is not None:
            return self.call.target
        label = make_label(tags, alt)
        return build_name(epoch, label, key, ext, self.config.max_name_bytes)

    async def _save(
        self,
        lane: Executor,
        temp: TempFile,
        name: str,
        key: str,
        verdict: Verdict,
        check_written: Callable[[], None],
        *,
        credentials: bool,
        validators: tuple[str | None, str | None] = (None, None),
    ) -> StoredFile:
        """Measure and commit a validated file on its lane, after its last chunk is written."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                lane,
                self._save_blocking,
                temp,
                name,
                key,
                verdict,
                check_written,
                credentials,
                validators,
            )
        except (OSError, ValueError) as exc:
            raise MediaError("storage", str(exc)) from exc

    def _save_blocking(
        self,
        temp: TempFile,
        name: str,
        key: str,
        verdict: Verdict,
        check_written: Callable[[], None],
        credentials: bool,
        validators: tuple[str | None, str | None],
    ) -> StoredFile:
        try:
            check_written()
            temp.close()
        except BaseException:
            temp.discard()
            raise
        size = image_size(temp.path, verdict.mime) if verdict.raster else None
        limit = self.config.max_pixels
        if size == TOO_MANY_PIXELS or (size and limit and size[0] * size[1] > limit):
            temp.discard()
            raise MediaError("too-large", f"the image declares more than {limit} pixels")
        return self.store.commit(
            temp,
            name,
            key,
            mime=verdict.mime,
            width=size[0] if size else None,
            height=size[1] if size else None,
            credentials=credentials,
            etag=validators[0],
            last_modified=validators[1],
        )

    async def _store_data_uri(self, source: str, key: str, tags: Any, alt: Any) -> MediaRecord:
        reused = await self._stored(key)
        if reused is not None and self._fresh(reused):
            return self._record(source, reused, "data")
        loop = asyncio.get_running_loop()
        lane = self._lanes.pick()
        # Decoding, hashing and writing a large URI is long work: a worker thread does it.
        temp, declared, verdict = await loop.run_in_executor(lane, self._write_data_uri, source)
        try:
            ext = choose_extension(verdict.ext, declared, None)
            name = self._name(key, epoch_from_headers(None, None), ext, tags, alt)
            stored = await self._save(
                lane, temp, name, key, verdict, _nothing_to_check, credentials=False
            )
        except BaseException:
            temp.discard()
            raise
        self._count_file(stored)
        return self._record(source, stored, "data")

    def _write_data_uri(self, source: str) -> tuple[TempFile, str | None, Verdict]:
        try:
            declared, pieces = open_data_uri(source)
        except BadDataURI as exc:
            raise MediaError("bad-data-uri", str(exc)) from exc
        if (
            declared is not None
            and classify_content_type(declared, self.config.media_types)
            is ContentTypeVerdict.REFUSE
        ):
            raise MediaError("content-type", f"data: URI declares {declared}")
        try:
            temp = self.store.new_temp()
        except OSError as exc:
            raise MediaError("storage", str(exc)) from exc
        try:
            head = self._write_pieces(temp, pieces)
            verdict = judge_body(declared, head, None)
            refusal = refusal_for(verdict, self.config.media_types, head)
            if refusal is not None:
                declares = f"data: URI declares {declared or 'no type'}"
                detail = f"{refusal.detail}; {declares}" if refusal.detail else declares
                raise MediaError(refusal.reason, detail)
        except BadDataURI as exc:
            temp.discard()
            raise MediaError("bad-data-uri", str(exc)) from exc
        except OSError as exc:
            temp.discard()
            raise MediaError("storage", str(exc)) from exc
        except BaseException:
            temp.discard()
            raise
        return temp, declared, verdict

    def _write_pieces(self, temp: TempFile, pieces: Iterator[bytes]) -> bytes:
        head = b""
        for piece in pieces:
            if len(head) < SNIFF_BYTES:
                head += piece[: SNIFF_BYTES - len(head)]
            if self.config.max_size and temp.size + len(piece) > self.config.max_size:
                raise MediaError("too-large", f"data: URI over the limit {self.config.max_size}")
            temp.write(piece)
        return head

    def _url(self, source: str, path: str, *, credentials: bool) -> str:
        url = local_url(self.config.url_prefix, path)
        if not (
            is_data_uri(source)
            or credentials
            or self.call.carries_credentials
            or self._profiled(source)
        ):
            url = with_provenance(url, source, self.config.add_url)
        return url

    def _profiled(self, source: str) -> bool:
        """Whether the source's host sends credentials: its provenance stays out of feeds."""
        if not self.config.host_profiles:
            return False
        try:
            host = urlsplit("https:" + source if source.startswith("//") else source).hostname
        except ValueError:
            return False
        profile = self.config.host_profiles.get(host or "")
        return profile is not None and profile.carries_credentials

    def _with_source(self, record: MediaRecord, source: str) -> MediaRecord:
        if record.path:
            url = self._url(source, record.path, credentials=record.credentials)
        else:
            url = source
        return dataclasses.replace(record, source=source, url=url)

    def _record(self, source: str, stored: StoredFile, status: str) -> MediaRecord:
        return MediaRecord(
            source=source,
            url=self._url(source, stored.path, credentials=stored.credentials),
            path=stored.path,
            status=status,
            mime=stored.mime,
            size=stored.size,
            sha256=stored.sha256,
            width=stored.width,
            height=stored.height,
            credentials=stored.credentials,
        )

    # -- bookkeeping ---------------------------------------------------------------------------

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
            self._inc("results_field_missing")
            if type(item) not in self._warned_missing_results_field:
                self._warned_missing_results_field.add(type(item))
                logger.warning(
                    "%s has no field %r: media records are not attached to its items "
                    "(declare the field, or set MEDIAPIPE_RESULTS_FIELD = None)",
                    type(item).__name__,
                    field,
                )

    def _count(self, record: MediaRecord) -> None:
        self._inc("sources")
        self._inc(f"status/{record.status}")
        if record.reason is not None:
            self._inc(f"failed/{record.reason}")

    def _count_file(self, stored: StoredFile) -> None:
        if stored.deduplicated:
            self._inc("deduplicated")
            return
        self._inc("stored_files")
        self._inc("stored_bytes", stored.size)

    def _inc(self, name: str, count: int = 1) -> None:
        self._counts[name] += count
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value(f"mediapipe/{name}", count)

    def summary(self) -> str:
        """The one-line summary logged when the spider closes."""
        counts = self._counts
        reasons = sorted(
            (name.split("/", 1)[1], count)
            for name, count in counts.items()
            if name.startswith("failed/")
        )
        failed = ", ".join(f"{reason}: {count}" for reason, count in reasons)
        return (
            f"mediapipe: {counts['sources']} sources in {counts['items']} items: "
            f"{counts['status/downloaded']} downloaded, {counts['status/data']} from data URIs, "
            f"{counts['status/uptodate']} reused, {counts['status/local']} local, "
            f"{counts['status/failed']} failed"
            + (f" ({failed})" if failed else "")
            + f"; {counts['stored_files']} files, {counts['stored_bytes']} bytes written"
            + (f", {counts['deduplicated']} deduplicated" if counts["deduplicated"] else "")
            + (f", {counts['revalidated']} revalidated" if counts["revalidated"] else "")
        )


def validators_of(headers: Headers) -> tuple[str | None, str | None]:
    """A response's ``ETag`` and ``Last-Modified``, kept to revalidate the file later."""
    etag, last_modified = headers.get(b"ETag"), headers.get(b"Last-Modified")
    return (
        etag.decode("latin-1") if etag else None,
        last_modified.decode("latin-1") if last_modified else None,
    )


def _nothing_to_check() -> None:
    """A data: URI was written in one go, on its lane: no earlier write can have failed."""


# What a user can do about a failure, added to its WARNING line.
_HINTS = {
    "unsafe-url": (
        "to allow it, add the host to MEDIAPIPE_ALLOWED_HOSTS, "
        "or set MEDIAPIPE_ALLOW_PRIVATE_NETWORKS = True"
    ),
    "robots": "set ROBOTSTXT_OBEY = False to fetch it anyway",
}


def failure_line(source: Any, failure: MediaError) -> str:
    """The one WARNING line of a failed source: reason, source, detail and a hint."""
    notes = [note for note in (failure.detail, _HINTS.get(failure.reason)) if note]
    line = f"Media (failed: {failure.reason}): {shown(source)}"
    return f"{line} ({'; '.join(notes)})" if notes else line


class _RootRelative:
    """Counts sources that are root-relative paths, for one note at the end of the crawl: a
    spider that forgot ``response.urljoin`` gets them all left as local paths."""

    def __init__(self) -> None:
        self.count = 0
        self.example = ""

    def note(self, source: str) -> None:
        self.count += 1
        self.example = self.example or shown(source)

    def report(self) -> None:
        if self.count:
            # INFO, not WARNING: local paths are valid sources (contract §3.1), often on purpose.
            logger.info(
                "mediapipe: %d distinct sources were root-relative paths (such as %r), kept "
                "as local paths and not downloaded; if they are URLs of the crawled site, join "
                "them to their page in the spider: response.urljoin(src)",
                self.count,
                self.example,
            )


_SHOWN_CHARS = 200


def shown(source: Any) -> str:
    """A source as log lines show it: a long data: URI would flood the log."""
    text = str(source)
    if len(text) <= _SHOWN_CHARS:
        return text
    return f"{text[:_SHOWN_CHARS]}… ({len(text)} characters)"


def _alt_for(alt: Any, index: int) -> Any:
    if isinstance(alt, list | tuple):
        return alt[index] if index < len(alt) else None
    return alt
