"""File-name rules for stored media (contract §5): ``<epoch>_<label>_<h16><ext>``.

Every part is deterministic given the source, the tags/alt and the response headers, and the
result never contains a path separator, a control character or more than ``max_bytes`` bytes.
"""

from __future__ import annotations

import functools
import hashlib
import re
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from mediapipe.mediatypes import (
    KNOWN_EXTENSIONS,
    extension_for_mime,
    normalize_ext,
    url_extension,
)

__all__ = [
    "HASH_DIGITS",
    "MAX_EPOCH",
    "MIN_NAME_BYTES",
    "NameRule",
    "build_name",
    "choose_extension",
    "epoch_from_headers",
    "make_label",
    "media_name",
    "normalize_ext",
    "parse_http_date",
    "safe_label",
    "source_hash",
    "url_extension",
]

HASH_DIGITS = 16
_HASH_PIECE = 1 << 20
MAX_EPOCH = 10**11 - 1
"""The largest epoch a name may carry (11 digits, the year 5138); later dates are refused."""

MIN_NAME_BYTES: int = len(str(MAX_EPOCH)) + 1 + HASH_DIGITS + max(map(len, KNOWN_EXTENSIONS))
"""The longest name without a label; ``max_bytes`` below this could fail to fit a name."""

_EDGE_CHARS = ".,_+-"
_KEPT_PUNCTUATION = frozenset("_-.,+")
_KEPT_CATEGORY_CLASSES = frozenset("LMN")  # letters, combining marks, numbers, of any script
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Cn", "Co"})
# Default-ignorable code points that are not Cc/Cf: invisible, so dropped like zero-width ones.
_INVISIBLE = frozenset(
    [chr(c) for c in (0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0)]
    + [chr(c) for c in range(0x180B, 0x1810)]  # Mongolian variation selectors
    + [chr(c) for c in range(0xFE00, 0xFE10)]  # variation selectors (emoji presentation …)
    + [chr(c) for c in range(0xE0100, 0xE01F0)]  # variation selectors supplement
)
_HASH_PATTERN = re.compile(r"[0-9a-f]{16}")
_EXT_PATTERN = re.compile(r"(?:\.[a-z0-9]+)?")
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_SECOND = timedelta(seconds=1)


def source_hash(source: str) -> str:
    """First 16 hex digits of the SHA-256 of the source's UTF-8 bytes (lone surrogates allowed)."""
    digest = hashlib.sha256()
    # In pieces: a data: URI source can be tens of megabytes, and encoding it whole copies it.
    for start in range(0, len(source), _HASH_PIECE):
        digest.update(source[start : start + _HASH_PIECE].encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:HASH_DIGITS]


# --- label ------------------------------------------------------------------------------------


def safe_label(text: str) -> str:
    """Make text safe for a file name.

    Control, format (zero-width, bidi), surrogate, private-use, unassigned and other invisible
    characters are dropped; the rest is NFC-normalised. Then every run of characters that are
    not letters, combining marks, numbers or ``_ - . , +`` becomes one ``_`` (kept ``_`` next to
    such a run are not merged with it), and ``. , _ + -`` are stripped from both ends.
    """
    # Dropping before normalising lets "e" + ZWJ + U+0301 compose into "é".
    visible = "".join(char for char in text if not _is_dropped(char))
    composed = unicodedata.normalize("NFC", visible)
    return _replace_disallowed_runs(composed).strip(_EDGE_CHARS)


def _is_dropped(char: str) -> bool:
    return char in _INVISIBLE or unicodedata.category(char) in _DROPPED_CATEGORIES


def _is_kept(char: str) -> bool:
    return char in _KEPT_PUNCTUATION or unicodedata.category(char)[0] in _KEPT_CATEGORY_CLASSES


def _replace_disallowed_runs(text: str) -> str:
    pieces: list[str] = []
    in_run = False
    for char in text:
        if _is_kept(char):
            pieces.append(char)
            in_run = False
        elif not in_run:
            pieces.append("_")
            in_run = True
    return "".join(pieces)


def make_label(tags: Iterable[object] | None, alt: object | None) -> str:
    """Join the tags with ``+``, then ``+`` and the alt text, and make the result safe.

    Falsy tags (None, "", 0, False) are skipped and other non-str tags go through ``str()``;
    a lone str (or any non-iterable) counts as one tag. An alt of None or "" is absent.
    """
    parts = _tag_texts(tags)
    if alt is not None and alt != "":
        parts.append(alt if isinstance(alt, str) else str(alt))
    return safe_label("+".join(parts))


def _tag_texts(tags: Iterable[object] | None) -> list[str]:
    if tags is None:
        return []
    entries: Iterable[object] = (
        [tags] if isinstance(tags, str | bytes) or not isinstance(tags, Iterable) else tags
    )
    return [entry if isinstance(entry, str) else str(entry) for entry in entries if entry]


# --- epoch ------------------------------------------------------------------------------------


# Servers send the same Date (and often Last-Modified) values to many responses in a row.
@functools.lru_cache(maxsize=256)
def parse_http_date(value: str | bytes | None) -> int | None:
    """Epoch seconds (UTC) of an HTTP date, or None when it is missing, garbage or out of range.

    The three formats of RFC 9110 §5.6.7 (IMF-fixdate, RFC 850, asctime) are parsed by the
    standard library's RFC 5322 parser, which also takes numeric zones; a date without a zone
    (asctime) is UTC, never local time. Two-digit years follow the standard library: 00–68 are
    20xx, 69–99 are 19xx. Dates before 1970 give negative numbers; bytes are read as Latin-1.
    """
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    try:
        moment = parsedate_to_datetime(text.strip())
    except (ValueError, TypeError, OverflowError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    epoch = (moment - _UNIX_EPOCH) // _ONE_SECOND
    return epoch if epoch <= MAX_EPOCH else None


def epoch_from_headers(
    last_modified: str | bytes | None, date: str | bytes | None, now: float | None = None
) -> int:
    """The name's epoch: Last-Modified, else Date, else ``now`` (default: the current time).

    Dates before 1970 become 0.
    """
    for header in (last_modified, date):
        epoch = parse_http_date(header)
        if epoch is not None:
            return _clamp_epoch(epoch)
    return _clamp_epoch(int(now if now is not None else time.time()))


def _clamp_epoch(epoch: int) -> int:
    return min(max(epoch, 0), MAX_EPOCH)


# --- extension --------------------------------------------------------------------------------


def choose_extension(sniffed_ext: str | None, declared_mime: str | None, url: str | None) -> str:
    """The sniffed format's extension, else the declared type's, else the URL path's, else ""."""
    sniffed = normalize_ext(sniffed_ext or "")
    if sniffed in KNOWN_EXTENSIONS:
        return sniffed
    return extension_for_mime(declared_mime) or url_extension(url)


# --- name -------------------------------------------------------------------------------------


def build_name(epoch: int, label: str, h16: str, ext: str, max_bytes: int = 200) -> str:
    """Assemble ``<epoch>_<label>_<h16><ext>`` (``<epoch>_<h16><ext>`` for an empty label).

    Only the label is shortened to fit ``max_bytes`` UTF-8 bytes, at a code-point boundary.
    Raises ValueError for malformed parts, or when even the name without a label is too long.
    """
    _check_name_parts(epoch, label, h16, ext)
    bare = f"{epoch}_{h16}{ext}"
    if len(bare) > max_bytes:  # all ASCII: characters are bytes
        raise ValueError(f"max_bytes={max_bytes} cannot hold even the name {bare!r}")
    prefix, suffix = f"{epoch}_", f"_{h16}{ext}"
    fitted = _fit_label(label, max_bytes - len(prefix) - len(suffix))
    return f"{prefix}{fitted}{suffix}" if fitted else bare


def _check_name_parts(epoch: int, label: str, h16: str, ext: str) -> None:
    if isinstance(epoch, bool) or not 0 <= epoch <= MAX_EPOCH:
        raise ValueError(f"epoch must be an int between 0 and {MAX_EPOCH}, not {epoch!r}")
    if not _HASH_PATTERN.fullmatch(h16):
        raise ValueError(f"h16 must be 16 lower-case hex digits, not {h16!r}")
    if not _EXT_PATTERN.fullmatch(ext):
        raise ValueError(f"ext must be empty or a dot and lower-case letters/digits, not {ext!r}")
    if safe_label(label) != label:
        raise ValueError(f"label {label!r} is not safe; pass it through safe_label() first")


def _fit_label(label: str, budget: int) -> str:
    encoded = label.encode("utf-8")
    if len(encoded) <= budget:
        return label
    if budget <= 0:
        return ""
    # Bytes of a character cut in half are dropped, so the cut falls on a code-point boundary.
    shortened = encoded[:budget].decode("utf-8", "ignore")
    return shortened.rstrip(_EDGE_CHARS)


def media_name(
    source: str,
    tags: Iterable[object] | None,
    alt: object | None,
    ext: str,
    last_modified: str | bytes | None,
    date: str | bytes | None,
    *,
    now: float | None = None,
    max_bytes: int = 200,
) -> str:
    """The full file name for a source, from its tags/alt, extension and response headers."""
    return build_name(
        epoch_from_headers(last_modified, date, now),
        make_label(tags, alt),
        source_hash(source),
        normalize_ext(ext),
        max_bytes,
    )


def retry_after_seconds(value: str, now: float | None = None) -> float:
    """Seconds a ``Retry-After`` header asks to wait: a number of seconds or an HTTP date."""
    text = value.strip()
    if text.isdigit():
        return float(text)
    when = parse_http_date(text)
    if when is None:
        return 0.0
    return max(0.0, when - (now if now is not None else time.time()))


@dataclass(frozen=True, slots=True)
class NameRule:
    """What a source's file name is made of, but for what only its response tells."""

    key: str
    tags: Any
    alt: Any
    max_bytes: int
    target: str | None = None  # a caller's own name, taken as it is

    def name(self, epoch: int, ext: str) -> str:
        if self.target is not None:
            return self.target
        return build_name(epoch, make_label(self.tags, self.alt), self.key, ext, self.max_bytes)
