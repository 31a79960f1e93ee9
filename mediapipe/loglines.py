"""How sources and failures read in the crawl log."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mediapipe.exceptions import MediaError

logger = logging.getLogger(__name__)

_SHOWN_CHARS = 200

# What a user can do about a failure, added to its WARNING line.
_HINTS = {
    "unsafe-url": (
        "to allow it, add the host to MEDIAPIPE_ALLOWED_HOSTS, "
        "or set MEDIAPIPE_ALLOW_PRIVATE_NETWORKS = True"
    ),
    "robots": "set ROBOTSTXT_OBEY = False to fetch it anyway",
}


def debug_wanted(log: logging.Logger) -> bool:
    """Whether a DEBUG line of ``log`` would reach a handler. Scrapy's ``LOG_LEVEL`` sets its
    handler's level, not the loggers': a DEBUG line below it is still built (its record, the
    caller's frame) before being dropped, which is a per-file cost in a long crawl."""
    if not log.isEnabledFor(logging.DEBUG):
        return False
    current: logging.Logger | None = log
    while current is not None:
        if any(handler.level <= logging.DEBUG for handler in current.handlers):
            return True
        current = current.parent if current.propagate else None
    return False


def shown(source: Any) -> str:
    """A source as log lines show it: a long data: URI would flood the log."""
    text = str(source)
    if len(text) <= _SHOWN_CHARS:
        return text
    return f"{text[:_SHOWN_CHARS]}… ({len(text)} characters)"


def failure_line(source: Any, failure: MediaError) -> str:
    """The one WARNING line of a failed source: reason, source, detail and a hint."""
    notes = [note for note in (failure.detail, _HINTS.get(failure.reason)) if note]
    line = f"Media (failed: {failure.reason}): {shown(source)}"
    return f"{line} ({'; '.join(notes)})" if notes else line


def internal_error_line(source: Any, exc: BaseException) -> str:
    """The ERROR line of a bug of ours met while handling ``source``."""
    return (
        f"Media (failed: internal): {shown(source)} "
        f"(an unexpected error in mediapipe: {type(exc).__name__}: {exc})"
    )


class RootRelativeNote:
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
