"""The contract's failure reasons (contract §9) and the exception that carries one."""

from __future__ import annotations

FIXED_REASONS = frozenset(
    {
        "content-type",
        "content-mismatch",
        "unknown-format",
        "too-large",
        "too-small",
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
