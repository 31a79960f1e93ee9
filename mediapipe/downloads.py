"""Fetching one source over HTTP through Scrapy's engine: the request, the retries, the
revalidation of an expired copy, and the stored file that results."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.spidermiddlewares.referer import RefererMiddleware

from mediapipe.exceptions import RETRIED_REASONS, MediaError, reason_for
from mediapipe.limits import DownloadLimiter
from mediapipe.loglines import shown
from mediapipe.middleware import META_KEY, REDIRECT_STATUSES
from mediapipe.naming import choose_extension, epoch_from_headers, retry_after_seconds
from mediapipe.store.registry import store_commits_over_network
from mediapipe.transfer import Transfer

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from scrapy.crawler import Crawler
    from scrapy.http import Headers

    from mediapipe.naming import NameRule
    from mediapipe.options import CallOptions
    from mediapipe.reuse import Reuse
    from mediapipe.saving import Saver, Validators
    from mediapipe.settings import MediaConfig
    from mediapipe.stats import MediaStats
    from mediapipe.store.files import StoredFile
    from mediapipe.transfer import ReceivedBody

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Fetched:
    """A validated body and what its response says for its name and its revalidation."""

    body: ReceivedBody
    name: str
    validators: Validators


class Downloader:
    """Downloads sources into the store, one attempt at a time per source."""

    def __init__(
        self,
        crawler: Crawler,
        config: MediaConfig,
        saver: Saver,
        reuse: Reuse,
        stats: MediaStats,
    ) -> None:
        self.crawler = crawler
        self.config = config
        self.saver = saver
        self.reuse = reuse
        self.stats = stats
        self._limiter = DownloadLimiter.from_settings(crawler.settings)
        self._commit_after_place = store_commits_over_network(saver.store)
        self._commit_places = asyncio.Semaphore(
            max(1, crawler.settings.getint("CONCURRENT_REQUESTS"))
        )
        # Hotlink-protected hosts refuse media requests without the page as Referer.
        self._referrer_policy = (
            RefererMiddleware(crawler.settings).default_policy()
            if crawler.settings.getbool("REFERER_ENABLED")
            else None
        )

    async def download(
        self,
        source: str,
        url: str,
        names: NameRule,
        call: CallOptions,
        known: StoredFile | None = None,
        *,
        before_fetch: Callable[[], Awaitable[None]] | None = None,
        referer: str | None = None,
    ) -> tuple[StoredFile, bool]:
        """The stored file of ``source``, and whether it is ``known`` (an expired stored copy
        with validators) which the server found unchanged. ``before_fetch`` runs once, when
        the first attempt has its download place; what it raises ends the download.
        ``referer`` is the page the source was found on."""
        host = urlsplit(url).hostname or ""
        attempt = 0
        while True:
            try:
                return await self._attempt(
                    source, url, host, names, call, known, before_fetch, referer
                )
            except MediaError as failure:
                if attempt >= self.config.retry_times or failure.reason not in RETRIED_REASONS:
                    if attempt:
                        self.stats.inc("retry/max_reached")
                    raise
                attempt += 1
                self.stats.inc("retry/count")
                self.stats.inc(f"retry/reason/{failure.reason}")
                delay = self._retry_delay(attempt, failure.retry_after)
                logger.debug(
                    "Media (retry %d in %.2f s: %s): %s",
                    attempt,
                    delay,
                    failure.reason,
                    shown(source),
                )
                await asyncio.sleep(delay)

    async def _attempt(
        self,
        source: str,
        url: str,
        host: str,
        names: NameRule,
        call: CallOptions,
        known: StoredFile | None,
        before_fetch: Callable[[], Awaitable[None]] | None = None,
        referer: str | None = None,
    ) -> tuple[StoredFile, bool]:
        transfer: Transfer | None = None
        try:
            async with self._limiter.place(host):
                if before_fetch is not None:
                    await before_fetch()
                config = self.config
                transfer = Transfer(
                    source,
                    self.saver.store,
                    self.saver.lanes.pick(),
                    config.media_types,
                    config.max_size,
                )
                if call.headers:
                    transfer.credentials.restrict(host, call.headers)
                fetched = await self._fetch(url, names, call, transfer, known, referer)
                if isinstance(fetched, tuple):
                    return fetched
                if not self._commit_after_place:
                    # A local commit is a rename: the place is held through it, so that bodies
                    # on their way to a disk slower than the network count against the limit.
                    return await self._commit(fetched, names, call, transfer), False
                # A commit that waits on the network (a bucket: several requests) is made
                # after the download place is given up: holding the place through it made each
                # download wait on the bucket as well as on the server (measured with 100 ms
                # of latency). The body holds a commit place instead, taken before the download
                # place is left, so bodies waiting stay within twice the download limit.
                await self._commit_places.acquire()
            try:
                return await self._commit(fetched, names, call, transfer), False
            finally:
                self._commit_places.release()
        except Exception as exc:
            if transfer is None:
                raise  # what before_fetch raised: it ends the download as it is
            transfer.discard()
            failure: MediaError | None
            if isinstance(exc, IgnoreRequest) and transfer.last_status in REDIRECT_STATUSES:
                # Scrapy's redirect middleware gave up (too many hops): the final answer
                # was a redirect, so the failure is that status, not a network error.
                failure = MediaError(f"http-{transfer.last_status}", str(exc))
            else:
                failure = reason_for(exc)
            if failure is None:
                raise  # a bug: reported as internal, with its traceback
            failure.retry_after = failure.retry_after or transfer.retry_after
            raise failure from exc

    def _retry_delay(self, attempt: int, retry_after: str | None) -> float:
        delay = self.config.retry_backoff * 2 ** (attempt - 1)
        if retry_after:
            delay = max(delay, retry_after_seconds(retry_after))
        return min(delay, self.config.retry_max_delay)

    async def _fetch(
        self,
        url: str,
        names: NameRule,
        call: CallOptions,
        transfer: Transfer,
        known: StoredFile | None,
        referer: str | None,
    ) -> Fetched | tuple[StoredFile, bool]:
        """The validated body of ``url``; or, when the server says ``known`` is unchanged,
        that file, refreshed."""
        assert self.crawler.engine is not None
        request = self._request(url, call, transfer, known, referer)
        response = await self.crawler.engine.download_async(request)
        if response.status == 304 and known is not None:
            try:
                return await self.reuse.refresh(names.key, known), True
            except OSError as exc:
                raise MediaError("storage", str(exc)) from exc
        if not 200 <= response.status < 300 or response.status == 206:
            # The URL is in the log line already; only a redirect's target is worth adding.
            final = f"from {response.url}" if response.url != url else ""
            raise MediaError(f"http-{response.status}", final)
        body = await transfer.body()
        epoch = epoch_from_headers(
            response.headers.get(b"Last-Modified"), response.headers.get(b"Date")
        )
        name = names.name(epoch, choose_extension(body.verdict.ext, body.declared, response.url))
        return Fetched(body, name, validators_of(response.headers))

    async def _commit(
        self, fetched: Fetched, names: NameRule, call: CallOptions, transfer: Transfer
    ) -> StoredFile:
        return await self.saver.save(
            fetched.body,
            fetched.name,
            names.key,
            credentials=transfer.credentials.used or call.carries_credentials,
            validators=fetched.validators,
            may_share=names.target is None,
        )

    def _request(
        self,
        url: str,
        call: CallOptions,
        transfer: Transfer,
        known: StoredFile | None,
        referer: str | None = None,
    ) -> Request:
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
        if call.proxy:
            meta["proxy"] = call.proxy
        cookies: dict[str | bytes, str | bytes | bool | float | int] = {
            name: value for name, value in call.cookies.items()
        }
        headers: dict[str, Any] = dict(call.headers)
        if known is not None:
            if known.etag:
                headers["If-None-Match"] = known.etag
            if known.last_modified:
                headers["If-Modified-Since"] = known.last_modified
        if referer is not None and self._referrer_policy is not None:
            # Scrapy's REFERRER_POLICY decides what of the page URL the media host is told.
            sent = self._referrer_policy.referrer(referer, url)
            if sent and not any(name.lower() == "referer" for name in headers):
                headers["Referer"] = sent
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


def validators_of(headers: Headers) -> Validators:
    """A response's ``ETag`` and ``Last-Modified``, kept to revalidate the file later."""
    etag, last_modified = headers.get(b"ETag"), headers.get(b"Last-Modified")
    return (
        etag.decode("latin-1") if etag else None,
        last_modified.decode("latin-1") if last_modified else None,
    )
