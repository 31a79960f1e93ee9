"""Media types and extensions: the tables, and the Content-Type rule (contract §4.3, §5).

Pure functions; the file-name rules in :mod:`mediapipe.naming` and the body rule in
:mod:`mediapipe.sniff` share these tables, so they agree on what counts as a media extension.
"""

from __future__ import annotations

import enum
import functools
import mimetypes
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
        ".tif", ".tiff", ".ico", ".svg", ".jxl", ".jp2", ".qoi",
        ".mp3", ".mp2", ".aac", ".wav", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".mka",
        ".aiff", ".aif", ".aifc", ".au", ".snd", ".ac3", ".dts", ".amr", ".awb", ".mid", ".midi",
        ".caf", ".ape", ".wv", ".wma", ".ra",
        ".mp4", ".m4v", ".mov", ".qt", ".ogv", ".webm", ".mkv", ".avi", ".3gp", ".3g2", ".mpg",
        ".mpeg", ".m1v", ".m2v", ".wmv", ".asf", ".flv", ".ts", ".m2ts", ".mts",
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
    "image/svg+xml": ".svg", "image/jxl": ".jxl", "image/jp2": ".jp2", "image/qoi": ".qoi",
    "audio/mpeg": ".mp3", "audio/mp3": ".mp3", "audio/mpeg3": ".mp3", "audio/x-mpeg": ".mp3",
    "audio/x-mp3": ".mp3", "audio/aac": ".aac", "audio/aacp": ".aac", "audio/x-aac": ".aac",
    "audio/wav": ".wav", "audio/wave": ".wav", "audio/x-wav": ".wav", "audio/vnd.wave": ".wav",
    "audio/flac": ".flac", "audio/x-flac": ".flac",
    "audio/ogg": ".ogg", "audio/vorbis": ".ogg", "application/ogg": ".ogg", "audio/opus": ".opus",
    "audio/mp4": ".m4a", "audio/m4a": ".m4a", "audio/x-m4a": ".m4a",
    "audio/webm": ".webm", "audio/x-matroska": ".mka", "audio/3gpp": ".3gp", "audio/3gpp2": ".3g2",
    "audio/aiff": ".aiff", "audio/x-aiff": ".aiff", "audio/basic": ".au", "audio/x-au": ".au",
    "audio/ac3": ".ac3", "audio/vnd.dts": ".dts", "audio/amr": ".amr", "audio/amr-wb": ".awb",
    "audio/midi": ".mid", "audio/mid": ".mid", "audio/x-midi": ".mid", "audio/x-caf": ".caf",
    "audio/ape": ".ape", "audio/x-ape": ".ape", "audio/wavpack": ".wv", "audio/x-wavpack": ".wv",
    "audio/x-ms-wma": ".wma",
    "video/mp4": ".mp4", "video/x-m4v": ".m4v", "video/quicktime": ".mov", "video/ogg": ".ogv",
    "video/webm": ".webm", "video/x-matroska": ".mkv", "video/matroska": ".mkv",
    "video/x-msvideo": ".avi", "video/avi": ".avi", "video/msvideo": ".avi",
    "video/3gpp": ".3gp", "video/3gpp2": ".3g2", "video/mpeg": ".mpg", "video/mp2t": ".ts",
    "video/x-ms-wmv": ".wmv", "video/x-ms-asf": ".asf", "video/x-flv": ".flv", "video/flv": ".flv",
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
    """Return the canonical extension for a media type (parameters and case ignored), else "".

    A type missing from this module's table is looked up in the standard library's
    :mod:`mimetypes` defaults (image, audio and video types only, never the system's files);
    its first extension that is in :data:`KNOWN_EXTENSIONS` counts.
    """
    kind = essence(mime)
    if kind is None:
        return ""
    ext = _EXTENSION_FOR_MIME.get(kind)
    if ext is not None:
        return ext
    if not kind.startswith(_MEDIA_PREFIXES):
        return ""
    for candidate in _standard_types().guess_all_extensions(kind, strict=True):
        ext = normalize_ext(candidate)
        if ext in KNOWN_EXTENSIONS:
            return ext
    return ""


_MEDIA_PREFIXES = ("image/", "audio/", "video/")


@functools.cache
def _standard_types() -> mimetypes.MimeTypes:
    # An instance holds only the built-in table: the answer does not depend on the machine.
    return mimetypes.MimeTypes()


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
