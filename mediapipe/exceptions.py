"""Typed failures with the contract's reason words (spec §9)."""

from __future__ import annotations

import ssl

from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadTimeoutError,
    ResponseDataLossError,
    UnsupportedURLSchemeError,
)

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
    }
)


def is_reason(word: str) -> bool:
    """True for a word of spec §9 (``http-<code>`` included)."""
    if word.startswith("http-"):
        return word[5:].isdigit()
    return word in FIXED_REASONS


class MediaError(Exception):
    """One source could not be stored; ``reason`` is a word of spec §9."""

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


def reason_for(exc: BaseException) -> MediaError:
    """Map a download exception from Scrapy or Twisted to a typed media failure."""
    if isinstance(exc, MediaError):
        return exc
    detail = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    if isinstance(exc, DownloadTimeoutError | TimeoutError):
        return MediaError("timeout", detail)
    if isinstance(exc, CannotResolveHostError):
        return MediaError("dns", detail)
    if isinstance(exc, ResponseDataLossError):
        return MediaError("truncated", detail)
    if isinstance(exc, UnsupportedURLSchemeError):
        return MediaError("unsupported-url", detail)
    if _looks_like_tls(exc):
        return MediaError("tls", detail)
    if _is_dataloss(exc):
        return MediaError("truncated", detail)
    # Refused, reset, cancelled, failed: whatever else broke the exchange on the way.
    return MediaError("connection", detail)


def _is_dataloss(exc: BaseException) -> bool:
    for item in _chain(exc):
        name = type(item).__name__
        if name in {"_DataLoss", "PotentialDataLoss", "ClientPayloadError", "ContentLengthError"}:
            return True
        reasons = getattr(item, "reasons", None)
        if reasons and any(_is_dataloss(getattr(r, "value", r)) for r in reasons):
            return True
    return False
