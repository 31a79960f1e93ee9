"""Reading a crawl's feed (Scrapy's JSON lines or JSON array output) into gallery entries.

The feed is untrusted input: every value is type-checked here, and whatever does not fit is
skipped and counted rather than trusted or allowed to stop the gallery.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

STATUSES = ("downloaded", "uptodate", "data", "local", "failed")
STORED_STATUSES = frozenset({"downloaded", "uptodate", "data"})

# Scrapy's exporters write a byte-order mark before every item under the utf-8-sig encoding;
# items start lines, and a JSON string cannot span lines, so these marks are never data.
_LINE_START_BOM = re.compile(r"^\ufeff", re.MULTILINE)


class FeedError(ValueError):
    """The feed cannot be read at all: the message is one line for the user."""


@dataclass(frozen=True, slots=True)
class Thumbnail:
    path: str
    url: str | None
    width: int | None
    height: int | None


@dataclass(frozen=True, slots=True)
class Entry:
    """One media record of the feed, with what its item says about it."""

    item: int  # the item's number in the feed, from 1
    source: str
    url: str | None
    path: str | None
    status: str
    reason: str | None
    mime: str | None
    size: int | None
    width: int | None
    height: int | None
    alt: str = ""
    tags: tuple[str, ...] = ()
    page: str | None = None
    thumbnails: tuple[Thumbnail, ...] = ()  # narrowest first
    thumbnails_reason: str | None = None


@dataclass
class Feed:
    """The entries of one feed, and how many parts of it were skipped, by why."""

    path: Path
    items: int = 0
    entries: list[Entry] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class Totals:
    items: int
    sources: int
    by_status: dict[str, int]
    by_reason: dict[str, int]
    stored_files: int
    stored_bytes: int


def totals(feed: Feed) -> Totals:
    """The crawl's totals as the feed shows them; a file shared by several inputs counts once."""
    by_status = Counter(entry.status for entry in feed.entries)
    by_reason = Counter(entry.reason for entry in feed.entries if entry.reason)
    stored = {entry.path: entry.size or 0 for entry in feed.entries if entry.path is not None}
    return Totals(
        items=feed.items,
        sources=len(feed.entries),
        by_status={status: by_status[status] for status in STATUSES if by_status[status]},
        by_reason=dict(sorted(by_reason.items())),
        stored_files=len(stored),
        stored_bytes=sum(stored.values()),
    )


def read_feed(path: Path, results_field: str = "media") -> Feed:
    """The entries of a JSON lines or JSON array feed; raises :class:`FeedError`."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise FeedError(f"cannot read the feed {path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise FeedError(f"the feed {path} is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise FeedError(f"cannot read the feed {path}: {exc.strerror or exc}") from None
    text = _LINE_START_BOM.sub("", text)
    feed = Feed(path)
    for value in _values(text, feed):
        _add_item(feed, value, results_field)
    if not feed.entries and feed.skipped:
        raise FeedError(f"no media records in the feed {path}: {describe_skipped(feed.skipped)}")
    return feed


def describe_skipped(skipped: Counter[str]) -> str:
    return ", ".join(f"{count} {why}" for why, count in skipped.items())


def _values(text: str, feed: Feed) -> list[Any]:
    if text.lstrip().startswith("["):
        try:
            document = json.loads(text)
        except ValueError:
            # A crawl that was killed leaves a JSON array without its end; Scrapy's exporter
            # writes one item per line, so the items it finished are still readable.
            return _lines(text, feed, array=True)
        return document if isinstance(document, list) else [document]
    return _lines(text, feed, array=False)


def _lines(text: str, feed: Feed, *, array: bool) -> list[Any]:
    values = []
    for line in text.splitlines():
        line = line.strip()
        if array:
            line = line.removeprefix("[").removesuffix("]").strip().removesuffix(",")
        if not line:
            continue
        try:
            values.append(json.loads(line))
        except ValueError:
            feed.skipped["lines that are not JSON"] += 1
    return values


def _add_item(feed: Feed, value: Any, results_field: str) -> None:
    if not isinstance(value, dict):
        feed.skipped["entries that are not JSON objects"] += 1
        return
    records = value.get(results_field)
    if not isinstance(records, list):
        feed.skipped[f"items without a {results_field!r} list (MEDIAPIPE_RESULTS_FIELD)"] += 1
        return
    feed.items += 1
    alts = value.get("alt")
    tags = _tags(value.get("tags"))
    page = _text(value.get("page"))
    for position, record in enumerate(records):
        entry = _entry(record, feed.items, _alt(alts, position), tags, page)
        if entry is None:
            feed.skipped["records that are not valid media records"] += 1
        else:
            feed.entries.append(entry)


def _entry(
    record: Any, item: int, alt: str, tags: tuple[str, ...], page: str | None
) -> Entry | None:
    if not isinstance(record, dict) or record.get("status") not in STATUSES:
        return None
    path = _store_path(record.get("path"))
    if (path is None) == (record["status"] in STORED_STATUSES):
        return None  # a stored file without a usable path, or a path for nothing stored
    source = record.get("source")
    return Entry(
        item=item,
        source="" if source is None else str(source),
        url=_text(record.get("url")),
        path=path,
        status=record["status"],
        reason=_text(record.get("reason")),
        mime=_text(record.get("mime")),
        size=_count(record.get("size")),
        width=_count(record.get("width")),
        height=_count(record.get("height")),
        alt=alt,
        tags=tags,
        page=page,
        thumbnails=_thumbnails(record.get("thumbnails")),
        thumbnails_reason=_text(record.get("thumbnails_reason")),
    )


def _store_path(value: Any) -> str | None:
    """A path relative to the store, or None for one that is absent or would lead out of it."""
    if not isinstance(value, str) or not value or "\\" in value or "\x00" in value:
        return None
    parts = PurePosixPath(value).parts
    if value.startswith("/") or ".." in parts or not parts:
        return None
    return value


def _thumbnails(value: Any) -> tuple[Thumbnail, ...]:
    if not isinstance(value, dict):
        return ()
    found = []
    for thumbnail in value.values():
        if not isinstance(thumbnail, dict):
            continue
        path = _store_path(thumbnail.get("path"))
        if path is not None:
            found.append(
                Thumbnail(
                    path=path,
                    url=_text(thumbnail.get("url")),
                    width=_count(thumbnail.get("width")),
                    height=_count(thumbnail.get("height")),
                )
            )
    return tuple(sorted(found, key=lambda t: (t.width or 0, t.path)))


def _alt(value: Any, position: int) -> str:
    if isinstance(value, list):
        value = value[position] if position < len(value) else None
    return value if isinstance(value, str) else ""


def _tags(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return ()
    return tuple(str(tag) for tag in value if tag and not isinstance(tag, dict | list))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
