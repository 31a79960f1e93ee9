"""Download handlers that stream media bodies instead of buffering them.

Scrapy's handlers keep every response body in memory until it is complete (Scrapy issues
#3880 and #4620), and offer no public way to stream one. These subclasses change that for
media requests only: the body still passes through the ``bytes_received`` signal, where the
media middleware spools it to disk, but the handler keeps no copy of it, and it pauses the
connection while the disk catches up. Every other request is left to Scrapy's code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from scrapy import signals
from scrapy.core.downloader.contextfactory import _ScrapyClientContextFactory
from scrapy.core.downloader.handlers._aiohttp import AiohttpDownloadHandler
from scrapy.core.downloader.handlers.http11 import (
    HTTP11DownloadHandler,
    _ResponseReader,
    _ScrapyAgent,
)
from scrapy.exceptions import ResponseDataLossError
from scrapy.utils._download_handlers import (
    check_stop_download,
    make_response,
    wrap_twisted_exceptions,
)
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

from mediapipe.middleware import media_transfer
from mediapipe.settings import MediaConfig, SettingError

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from twisted.internet.defer import Deferred
    from twisted.web.client import Response as TxResponse


class _NoBody:
    """Stands in for the reader's body buffer: the bytes went to the spool already."""

    def write(self, data: bytes) -> int:
        return len(data)

    def getvalue(self) -> bytes:
        return b""

    def truncate(self, size: int | None = None) -> int:
        return 0


class _StreamingAgent(_ScrapyAgent):
    def _cb_bodyready(self, txresponse: TxResponse, request: Request) -> Any:
        result = super()._cb_bodyready(txresponse, request)
        reader = getattr(txresponse, "_bodyProtocol", None)
        transfer = media_transfer(request)
        if isinstance(reader, _ResponseReader) and transfer is not None:
            # What arrived before this point (one socket read or so) stays in the old buffer,
            # which is dropped here; the spool has those bytes from the signal already.
            reader._bodybuf = _NoBody()  # type: ignore[assignment]
            producer = txresponse._transport
            transfer.attach_producer(producer.pauseProducing, producer.resumeProducing)
        return result


@implementer(IPolicyForHTTPS)
class _PerHostTLS:
    """TLS certificate checks as each host's profile asks (``verify_tls``), else as Scrapy's
    ``DOWNLOAD_VERIFY_CERTIFICATES`` says."""

    def __init__(self, crawler: Crawler, default: Any, hosts: dict[str, bool]) -> None:
        self._default = default
        self._hosts = hosts
        self._by_choice: dict[bool, Any] = {}
        for choice in set(hosts.values()):
            factory = _ScrapyClientContextFactory.from_crawler(crawler)
            factory._verify_certificates = choice
            self._by_choice[choice] = factory

    def creatorForNetloc(self, hostname: bytes, port: int) -> Any:
        choice = self._hosts.get(hostname.decode("ascii", "replace").lower())
        factory = self._default if choice is None else self._by_choice[choice]
        return factory.creatorForNetloc(hostname, port)


class MediaHTTP11DownloadHandler(HTTP11DownloadHandler):
    """Scrapy's default HTTP/1.1 handler, streaming media bodies to the store, with the TLS
    choices of ``MEDIAPIPE_HOST_PROFILES``."""

    # Built when the crawler starts, not at the first download: building it imports modules
    # for a few hundred milliseconds, which would stall the reactor in the middle of a crawl.
    lazy = False

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        try:
            profiles = MediaConfig.from_settings(crawler.settings).host_profiles
        except SettingError:
            profiles = {}  # the media middleware, built next, stops the crawl with the error
        choices = {
            host: profile.verify_tls
            for host, profile in profiles.items()
            if profile.verify_tls is not None
        }
        if choices:
            self._contextFactory = cast(
                "IPolicyForHTTPS", _PerHostTLS(crawler, self._contextFactory, choices)
            )

    async def download_request(self, request: Request) -> Response:
        if media_transfer(request) is None:
            return await super().download_request(request)
        agent = _StreamingAgent(
            contextFactory=self._contextFactory,
            bindAddress=self._bind_address,
            pool=self._pool,
            maxsize=0,
            warnsize=0,
            fail_on_dataloss=True,
            crawler=self._crawler,
            tls_verbose_logging=self._tls_verbose_logging,
        )
        with wrap_twisted_exceptions():
            deferred: Deferred[Response] = agent.download_request(request)
            return await maybe_deferred_to_future(deferred)


class MediaAiohttpDownloadHandler(AiohttpDownloadHandler):
    """Scrapy's aiohttp handler (used without a Twisted reactor), streaming media bodies."""

    lazy = False

    async def _read_response(self, response: Any, request: Request) -> Response:
        transfer = media_transfer(request)
        if transfer is None:
            return await super()._read_response(response, request)
        headers = self._extract_headers(response)
        base = self._build_base_response_args(response, request, headers)
        length = headers.get(b"Content-Length")
        stop = check_stop_download(
            signals.headers_received,
            self.crawler,
            request,
            headers=headers,
            body_length=int(length) if length and length.isdigit() else None,
        )
        if stop is not None:
            return make_response(**base, stop_download=stop)
        try:
            async for chunk in self._iter_body_chunks(response):
                stop = check_stop_download(
                    signals.bytes_received, self.crawler, request, data=chunk
                )
                if stop is not None:
                    return make_response(**base, stop_download=stop)
                await transfer.wait_for_disk()
        except Exception as exc:
            if not self._is_dataloss_exception(exc):
                raise
            raise ResponseDataLossError(str(exc)) from exc
        return make_response(**base)


__all__ = ["MediaAiohttpDownloadHandler", "MediaHTTP11DownloadHandler"]
