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

# Defined apart, with no Scrapy import, for the writer process; the names stay importable here.
from mediapipe.reasons import FIXED_REASONS as FIXED_REASONS
from mediapipe.reasons import RETRIED_REASONS as RETRIED_REASONS
from mediapipe.reasons import MediaError as MediaError
from mediapipe.reasons import is_reason as is_reason

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

if TYPE_CHECKING:
    from types import TracebackType


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
