"""Typed failures with the contract's reason words (contract §9)."""

from __future__ import annotations

import socket
import ssl
from typing import TYPE_CHECKING

from aiohttp import ClientError
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
    UnsupportedURLSchemeError,
)
from twisted.internet.error import ConnectError, ConnectionClosed
from twisted.internet.error import TimeoutError as TwistedTimeoutError
from twisted.web.client import RequestTransmissionFailed, ResponseFailed, ResponseNeverReceived

if TYPE_CHECKING:
    from types import TracebackType

FIXED_REASONS = frozenset(
    {
        "content-type",
        "content-mismatch",
        "unknown-format",
        "too-large",
        "empty",
        "truncated",
        "timeout",
        "connection",
        "dns",
        "tls",
        "unsafe-url",
        "unsupported-url",
        "bad-data-uri",
        "storage",
        "robots",
        "ignored",
        "internal",
    }
)

# Only these are worth another attempt (contract §9): the server was busy, or the connection or
# the body broke on the way.
RETRIED_REASONS = frozenset({"http-429", "http-503", "connection", "truncated", "timeout"})

# What the network and the download handlers raise when an exchange fails; anything else
# reaching the pipeline is a bug, not a network error.
_NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadCancelledError,
    ConnectError,
    ConnectionClosed,
    ResponseFailed,
    ResponseNeverReceived,
    RequestTransmissionFailed,
    ClientError,
    ConnectionError,
    socket.gaierror,
)


def is_reason(word: str) -> bool:
    """True for a word of contract §9 (``http-<code>`` included)."""
    if word.startswith("http-"):
        return word[5:].isdigit()
    return word in FIXED_REASONS


class MediaError(Exception):
    """One source could not be stored; ``reason`` is a word of contract §9."""

    def __init__(self, reason: str, detail: str = "") -> None:
        if not is_reason(reason):
            raise ValueError(f"not a failure reason: {reason!r}")
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.retry_after: str | None = None  # a Retry-After header, for http-429 and http-503


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _looks_like_tls(exc: BaseException) -> bool:
    # Twisted reports TLS failures as pyOpenSSL errors wrapped in ResponseFailed /
    # DownloadFailedError, aiohttp as ssl.SSLError; both only show up in the chain or the text.
    for item in _chain(exc):
        if isinstance(item, ssl.SSLError):
            return True
        module = type(item).__module__
        if module.startswith("OpenSSL") or "SSL" in type(item).__name__:
            return True
    return "SSL routines" in str(exc) or "certificate verify failed" in str(exc)


def reason_for(exc: BaseException) -> MediaError | None:
    """Map a download exception to a typed media failure; None for one that no network,
    handler or downloader middleware raises (a bug: the caller reports it as ``internal``)."""
    if isinstance(exc, MediaError):
        return exc
    detail = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    if isinstance(exc, IgnoreRequest):
        if _raised_by(exc.__traceback__, RobotsTxtMiddleware):
            return MediaError("robots", "forbidden by robots.txt (ROBOTSTXT_OBEY)")
        return MediaError("ignored", f"a downloader middleware dropped the request ({exc})")
    if isinstance(exc, DownloadTimeoutError | TimeoutError | TwistedTimeoutError):
        return MediaError("timeout", detail)
    if isinstance(exc, CannotResolveHostError | socket.gaierror):
        return MediaError("dns", detail)
    if isinstance(exc, ResponseDataLossError):
        return MediaError("truncated", detail)
    if isinstance(exc, UnsupportedURLSchemeError):
        return MediaError("unsupported-url", detail)
    if _looks_like_tls(exc):
        return MediaError("tls", detail)
    if _is_dataloss(exc):
        return MediaError("truncated", detail)
    if isinstance(exc, _NETWORK_ERRORS):
        return MediaError("connection", detail)
    if isinstance(exc, OSError):
        # Not a network error (those are above): the disk or the file system refused.
        return MediaError("storage", detail)
    return None


def _raised_by(trace: TracebackType | None, component: type) -> bool:
    """Whether a method of ``component`` (or a subclass) is among the frames of ``trace``."""
    while trace is not None:
        if isinstance(trace.tb_frame.f_locals.get("self"), component):
            return True
        trace = trace.tb_next
    return False


def _is_dataloss(exc: BaseException) -> bool:
    for item in _chain(exc):
        name = type(item).__name__
        if name in {"_DataLoss", "PotentialDataLoss", "ClientPayloadError", "ContentLengthError"}:
            return True
        reasons = getattr(item, "reasons", None)
        if reasons and any(_is_dataloss(getattr(r, "value", r)) for r in reasons):
            return True
    return False
