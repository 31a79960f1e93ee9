"""Download handlers that stream media bodies instead of buffering them, and check the address
a media connection reached before sending the request.

Scrapy's handlers keep every response body in memory until it is complete (Scrapy issues
#3880 and #4620), and offer no public way to stream one. These subclasses change that for
media requests only: the body still passes through the ``bytes_received`` signal, where the
media middleware spools it to disk, but the handler keeps no copy of it, and it pauses the
connection while the disk catches up. Every other request is left to Scrapy's code.

Media connections are also checked against the address rule (contract §7.1) once connected and
before the request is written, by the pool and connector of :mod:`mediapipe.connections`.
Through a proxy the connected address is the proxy's; the target was checked by name in the
middleware.

The private Scrapy names this needs live in :mod:`mediapipe.compat`; when one is missing, each
handler behaves as Scrapy's own and logs one WARNING saying so.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit
from weakref import WeakSet

import aiohttp
from scrapy import signals
from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler
from scrapy.exceptions import DownloadFailedError, NotConfigured, ResponseDataLossError
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.web.client import HTTPConnectionPool
from twisted.web.iweb import UNKNOWN_LENGTH, IPolicyForHTTPS
from zope.interface import implementer

from mediapipe import compat
from mediapipe.connections import (
    MEDIA_HOST,
    MediaClientFactory,
    PeerCheckingConnector,
    PeerCheckingPool,
)
from mediapipe.exceptions import MediaError
from mediapipe.middleware import media_transfer
from mediapipe.safety import AddressPolicy
from mediapipe.settings import MediaConfig, SettingError

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from twisted.internet.defer import Deferred
    from twisted.web.client import Response as TxResponse

logger = logging.getLogger(__name__)

# No HTTP implementation counts a body past 64 bits; aiohttp's parser stops at such a length.
_LENGTH_LIMIT = 1 << 64

_warned: WeakSet[Crawler] = WeakSet()


def _config(crawler: Crawler) -> MediaConfig | None:
    try:
        return MediaConfig.from_settings(crawler.settings)
    except SettingError:
        return None  # the media middleware, built next, stops the crawl with the error


def _policy(config: MediaConfig | None) -> AddressPolicy:
    if config is None:
        return AddressPolicy(allow_private=False, allowed_hosts=())
    return AddressPolicy(config.allow_private_networks, config.allowed_hosts)


def _streaming(crawler: Crawler, reactor: bool) -> bool:
    supported, why = compat.streaming_supported(reactor)
    if not supported and crawler not in _warned:
        # One line per crawl, though Scrapy builds one handler per scheme.
        _warned.add(crawler)
        logger.warning("%s", why)
    return supported


# -- Twisted ------------------------------------------------------------------------------------


class _NoBody:
    """Stands in for the reader's body buffer: the bytes went to the spool already."""

    def write(self, data: bytes) -> int:
        return len(data)

    def getvalue(self) -> bytes:
        return b""

    def truncate(self, size: int | None = None) -> int:
        return 0


class _StreamingAgent(compat.ScrapyAgent):
    def _cb_bodyready(self, txresponse: TxResponse, request: Request) -> Any:
        length = txresponse.length
        if length is not UNKNOWN_LENGTH and cast("int", length) >= _LENGTH_LIMIT:
            txresponse._transport.stopProducing()
            txresponse._transport.loseConnection()
            raise MediaError("too-large", f"Content-Length {length} is past any size")
        result = super()._cb_bodyready(txresponse, request)
        reader = getattr(txresponse, "_bodyProtocol", None)
        transfer = media_transfer(request)
        if isinstance(reader, compat.ResponseReader) and transfer is not None:
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
            factory = compat.ScrapyClientContextFactory.from_crawler(crawler)
            factory._verify_certificates = choice
            self._by_choice[choice] = factory

    def creatorForNetloc(self, hostname: bytes, port: int) -> Any:
        choice = self._hosts.get(hostname.decode("ascii", "replace").lower())
        factory = self._default if choice is None else self._by_choice[choice]
        return factory.creatorForNetloc(hostname, port)


class MediaHTTP11DownloadHandler(HTTP11DownloadHandler):
    """Scrapy's default HTTP/1.1 handler, streaming media bodies to the store, checking the
    address of media connections, with the TLS choices of ``MEDIAPIPE_HOST_PROFILES``."""

    # Built when the crawler starts, not at the first download: building it imports modules
    # for a few hundred milliseconds, which would stall the reactor in the middle of a crawl.
    lazy = False

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self._streaming = _streaming(crawler, reactor=True)
        if not self._streaming:
            return
        from twisted.internet import reactor

        # Media connections never mix with page ones: direct ones are checked as they connect,
        # and every one parses answers as the aiohttp handler does.
        config = _config(crawler)
        self._media_pool = PeerCheckingPool(reactor, _policy(config))
        self._proxied_media_pool = HTTPConnectionPool(reactor, persistent=True)
        for pool in (self._media_pool, self._proxied_media_pool):
            pool.maxPersistentPerHost = self._pool.maxPersistentPerHost
            pool._factory = MediaClientFactory
        profiles = config.host_profiles if config is not None else {}
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
        if not self._streaming or media_transfer(request) is None:
            return await super().download_request(request)
        agent = _StreamingAgent(
            contextFactory=self._contextFactory,
            bindAddress=self._bind_address,
            # Through a proxy every connection reaches the proxy: no address to check.
            pool=self._proxied_media_pool if request.meta.get("proxy") else self._media_pool,
            maxsize=0,
            warnsize=0,
            fail_on_dataloss=True,
            crawler=self._crawler,
            tls_verbose_logging=self._tls_verbose_logging,
        )
        with compat.wrap_twisted_exceptions():
            deferred: Deferred[Response] = agent.download_request(request)
            return await maybe_deferred_to_future(deferred)

    async def close(self) -> None:
        await super().close()
        if self._streaming:
            # Scrapy's close() closes self._pool, with its time limit; so for ours.
            for pool in (self._media_pool, self._proxied_media_pool):
                self._pool = pool
                await super().close()


# -- aiohttp ------------------------------------------------------------------------------------


def _length_overflow(exc: BaseException) -> bool:
    # aiohttp's C parser (llhttp) fails the response before its headers reach the handler.
    return "Content-Length overflow" in str(exc)


class MediaAiohttpDownloadHandler(compat.AiohttpDownloadHandler):
    """Scrapy's aiohttp handler (used without a Twisted reactor), streaming media bodies and
    checking the address of media connections."""

    lazy = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def __init__(self, crawler: Crawler) -> None:
        if issubclass(compat.AiohttpDownloadHandler, compat.Missing):
            raise NotConfigured(
                f"{type(self).__name__} extends Scrapy's aiohttp download handler, which this "
                "Scrapy does not have; set DOWNLOAD_HANDLERS to Scrapy's own handlers"
            )
        super().__init__(crawler)
        self._streaming = _streaming(crawler, reactor=False)
        self._stock_session: aiohttp.ClientSession | None = None
        if not self._streaming:
            return
        stock = self._session
        connector = stock.connector
        # Scrapy's session with a connector that checks addresses; the same options otherwise.
        self._session = aiohttp.ClientSession(
            connector=PeerCheckingConnector(
                _policy(_config(crawler)),
                local_addr=self._bind_address,
                limit=connector.limit if connector is not None else 100,
                limit_per_host=connector.limit_per_host if connector is not None else 0,
            ),
            cookie_jar=stock.cookie_jar,
            auto_decompress=stock.auto_decompress,
            response_class=compat.AiohttpClientResponse,
            skip_auto_headers=stock.skip_auto_headers,
        )
        self._stock_session = stock

    async def download_request(self, request: Request) -> Response:
        if not self._streaming or media_transfer(request) is None:
            return await super().download_request(request)
        host = None if request.meta.get("proxy") else (urlsplit(request.url).hostname or "")
        token = MEDIA_HOST.set(host.lower() if host is not None else None)
        try:
            return await super().download_request(request)
        except DownloadFailedError as exc:
            if _length_overflow(exc):
                raise MediaError("too-large", "Content-Length is past any size") from exc
            raise
        finally:
            MEDIA_HOST.reset(token)

    async def _read_response(self, response: Any, request: Request) -> Response:
        transfer = media_transfer(request)
        if not self._streaming or transfer is None:
            return await super()._read_response(response, request)
        headers = self._extract_headers(response)
        base = self._build_base_response_args(response, request, headers)
        length = headers.get(b"Content-Length")
        stop = compat.check_stop_download(
            signals.headers_received,
            self.crawler,
            request,
            headers=headers,
            body_length=int(length) if length and length.isdigit() else None,
        )
        if stop is not None:
            return compat.make_response(**base, stop_download=stop)
        try:
            async for chunk in self._iter_body_chunks(response):
                stop = compat.check_stop_download(
                    signals.bytes_received, self.crawler, request, data=chunk
                )
                if stop is not None:
                    return compat.make_response(**base, stop_download=stop)
                await transfer.wait_for_disk()
        except Exception as exc:
            if not self._is_dataloss_exception(exc):
                raise
            raise ResponseDataLossError(str(exc)) from exc
        return compat.make_response(**base)

    async def close(self) -> None:
        await super().close()
        if self._stock_session is not None:
            await self._stock_session.close()


__all__ = [
    "MediaAiohttpDownloadHandler",
    "MediaHTTP11DownloadHandler",
]
