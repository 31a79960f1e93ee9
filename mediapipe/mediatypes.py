"""Media types and extensions: the tables, and the Content-Type rule (spec §4.3, §5).

Pure functions; the file-name rules in :mod:`mediapipe.naming` and the body rule in
:mod:`mediapipe.sniff` share these tables, so they agree on what counts as a media extension.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "KNOWN_EXTENSIONS",
    "ContentTypeVerdict",
    "classify_content_type",
    "essence",
    "extension_for_mime",
    "normalize_ext",
    "url_extension",
]

# --- extensions -------------------------------------------------------------------------------

KNOWN_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".jpg", ".jpeg", ".jpe", ".png", ".gif", ".webp", ".avif", ".heic", ".heif", ".bmp",
        ".tif", ".tiff", ".ico", ".svg",
        ".mp3", ".aac", ".wav", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".mka",
        ".mp4", ".m4v", ".mov", ".ogv", ".webm", ".mkv", ".avi", ".3gp", ".3g2", ".mpg", ".mpeg",
    }
)  # fmt: skip
"""Media extensions (with the dot) that a URL path may contribute to a file name."""

_EXTENSION_ALIASES = {"jpeg": "jpg", "jpe": "jpg"}

_EXTENSION_FOR_MIME: dict[str, str] = {
    "image/jpeg": ".jpg", "image/jpg": ".jpg", "image/pjpeg": ".jpg",
    "image/png": ".png", "image/apng": ".png", "image/gif": ".gif", "image/webp": ".webp",
    "image/avif": ".avif", "image/avif-sequence": ".avif",
    "image/heic": ".heic", "image/heic-sequence": ".heic",
    "image/heif": ".heif", "image/heif-sequence": ".heif",
    "image/bmp": ".bmp", "image/x-bmp": ".bmp", "image/x-ms-bmp": ".bmp",
    "image/tiff": ".tiff", "image/x-icon": ".ico", "image/vnd.microsoft.icon": ".ico",
    "image/svg+xml": ".svg",
    "audio/mpeg": ".mp3", "audio/mp3": ".mp3", "audio/mpeg3": ".mp3", "audio/x-mpeg": ".mp3",
    "audio/x-mp3": ".mp3", "audio/aac": ".aac", "audio/aacp": ".aac", "audio/x-aac": ".aac",
    "audio/wav": ".wav", "audio/wave": ".wav", "audio/x-wav": ".wav", "audio/vnd.wave": ".wav",
    "audio/flac": ".flac", "audio/x-flac": ".flac",
    "audio/ogg": ".ogg", "audio/vorbis": ".ogg", "application/ogg": ".ogg", "audio/opus": ".opus",
    "audio/mp4": ".m4a", "audio/m4a": ".m4a", "audio/x-m4a": ".m4a",
    "audio/webm": ".webm", "audio/x-matroska": ".mka", "audio/3gpp": ".3gp", "audio/3gpp2": ".3g2",
    "video/mp4": ".mp4", "video/x-m4v": ".m4v", "video/quicktime": ".mov", "video/ogg": ".ogv",
    "video/webm": ".webm", "video/x-matroska": ".mkv", "video/matroska": ".mkv",
    "video/x-msvideo": ".avi", "video/avi": ".avi", "video/msvideo": ".avi",
    "video/3gpp": ".3gp", "video/3gpp2": ".3g2", "video/mpeg": ".mpg",
}  # fmt: skip


def normalize_ext(ext: str) -> str:
    """Return ``ext`` lower-cased with one leading dot; ``.jpeg`` and ``.jpe`` become ``.jpg``.

    An empty extension (or a lone dot) gives "".
    """
    bare = ext.strip().lstrip(".").lower()
    if not bare:
        return ""
    return "." + _EXTENSION_ALIASES.get(bare, bare)


def url_extension(url: str | None) -> str:
    """Return the normalized extension of the URL's path when it is a known media extension.

    The query and fragment are ignored and the path is percent-decoded; anything else gives "".
    """
    if not url:
        return ""
    try:
        path = urlsplit(url).path
    except ValueError:
        return ""
    # Servlet-style path parameters (";jsessionid=…") are not part of the file name.
    file_name = unquote(path).rpartition("/")[2].partition(";")[0]
    stem, dot, suffix = file_name.rpartition(".")
    if not dot or not stem:
        return ""
    ext = normalize_ext(suffix)
    return ext if ext in KNOWN_EXTENSIONS else ""


def essence(content_type: str | bytes | None) -> str | None:
    """Return the lower-cased media type before any ``;`` parameters, or None when there is none."""
    if content_type is None:
        return None
    text = content_type.decode("latin-1") if isinstance(content_type, bytes) else content_type
    kind = text.partition(";")[0].strip().lower()
    return kind or None


def extension_for_mime(mime: str | None) -> str:
    """Return the canonical extension for a media type (parameters and case ignored), else ""."""
    kind = essence(mime)
    return _EXTENSION_FOR_MIME.get(kind, "") if kind else ""


# --- Content-Type rule (§4.3) -----------------------------------------------------------------

_OCTET_STREAM_TYPES = frozenset({"application/octet-stream", "binary/octet-stream"})


class ContentTypeVerdict(enum.Enum):
    """What to do once the response headers are known."""

    ACCEPT = "accept"
    SNIFF = "sniff"
    REFUSE = "refuse"


def classify_content_type(
    content_type: str | bytes | None, allowed: Sequence[str]
) -> ContentTypeVerdict:
    """Judge a Content-Type header against patterns like ``image/*``, ``image/png`` or ``*/*``.

    A missing header and the octet-stream types defer to the sniffer.
    """
    kind = essence(content_type)
    if kind is None or kind in _OCTET_STREAM_TYPES:
        return ContentTypeVerdict.SNIFF
    # A lone str is a Sequence[str] too; iterating it would match single characters.
    patterns = (allowed,) if isinstance(allowed, str) else allowed
    if any(_type_matches(kind, pattern) for pattern in patterns):
        return ContentTypeVerdict.ACCEPT
    return ContentTypeVerdict.REFUSE


def _type_matches(kind: str, pattern: str) -> bool:
    wanted = essence(pattern)
    if wanted is None:
        return False
    if wanted in ("*", "*/*"):
        return True
    if wanted.endswith("/*"):
        return kind.startswith(wanted[:-1])
    return kind == wanted
