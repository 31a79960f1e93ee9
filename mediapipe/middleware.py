"""The downloader middleware: refuses media responses at their headers and streams their
bodies into the store while they arrive."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from scrapy import signals
from scrapy.exceptions import StopDownload

from mediapipe.credentials import apply_host_profile
from mediapipe.exceptions import MediaError
from mediapipe.safety import AddressPolicy
from mediapipe.settings import MediaConfig, report_setting_errors_in_one_line
from mediapipe.transfer import Transfer

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Headers, Response

logger = logging.getLogger(__name__)

META_KEY = "mediapipe"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def media_transfer(request: Request) -> Transfer | None:
    """The media download state of ``request``, or None for any other request."""
    transfer = request.meta.get(META_KEY)
    return transfer if isinstance(transfer, Transfer) else None


class MediaDownloaderMiddleware:
    """Acts only on requests whose ``meta["mediapipe"]`` holds a :class:`Transfer`.

    Its priority must put it between the download handler and Scrapy's retry, redirect and
    compression middlewares (the add-on uses 950), so that it sees each raw response first.
    """

    def __init__(self, crawler: Crawler) -> None:
        report_setting_errors_in_one_line()
        config = MediaConfig.from_settings(crawler.settings)
        self.policy = AddressPolicy(config.allow_private_networks, config.allowed_hosts)
        self.profiles = config.host_profiles
        crawler.signals.connect(self._headers_received, signal=signals.headers_received)
        crawler.signals.connect(self._bytes_received, signal=signals.bytes_received)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    async def process_request(self, request: Request) -> None:
        transfer = media_transfer(request)
        if transfer is None:
            return
        # Ask for the bytes as stored: a compressed body would be hashed and sniffed compressed.
        request.headers[b"Accept-Encoding"] = b"identity"
        # Scrapy's retry middleware would retry media requests a second time, with other rules.
        request.meta["dont_retry"] = True
        parts = urlsplit(request.url)
        host = (parts.hostname or "").lower()
        await self.policy.check_host(host, parts.port or (443 if parts.scheme == "https" else 80))
        apply_host_profile(request, host, transfer.credentials, self.profiles)

    async def process_response(self, request: Request, response: Response) -> Response:
        transfer = media_transfer(request)
        if transfer is None:
            return response
        if not request.meta.get("proxy"):
            # The streaming handlers refused such a peer before sending the request; with
            # Scrapy's own handlers (mediapipe.compat's fallback) this later check is the only
            # one. Through a proxy the peer is the proxy; its target's address was checked above.
            self.policy.check_peer(urlsplit(request.url).hostname or "", response.ip_address)
        if response.status in REDIRECT_STATUSES and b"Location" in response.headers:
            transfer.not_stored(response.status)
            return response
        if not 200 <= response.status < 300 or response.status == 206:
            # The pipeline decides on other statuses; their bodies are never stored.
            retry_after = response.headers.get(b"Retry-After")
            transfer.not_stored(
                response.status, retry_after.decode("latin-1") if retry_after else None
            )
            return response
        transfer.answered(response.status)
        if "dataloss" in response.flags:
            transfer.discard()
            raise MediaError("truncated", "the connection closed before the whole body arrived")
        await transfer.finish()
        if not transfer.encoded and not response.body:
            return response  # the streaming handlers kept no copy of the body
        # The body now lives in the store's temporary file; drop Scrapy's copy and the encoding
        # header, so that no later middleware decodes or keeps it again.
        headers = response.headers.copy()
        headers.pop(b"Content-Encoding", None)
        return response.replace(body=b"", headers=headers)

    def process_exception(self, request: Request, exception: Exception) -> None:
        transfer = media_transfer(request)
        if transfer is not None:
            transfer.discard()

    def _headers_received(
        self, headers: Headers, body_length: object, request: Request, **_: object
    ) -> None:
        transfer = media_transfer(request)
        if transfer is not None and transfer.begin(headers, body_length) is not None:
            raise StopDownload(fail=False)

    def _bytes_received(self, data: bytes, request: Request, **_: object) -> None:
        transfer = media_transfer(request)
        if transfer is not None and transfer.receive(data) is not None:
            raise StopDownload(fail=False)
