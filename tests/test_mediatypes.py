from __future__ import annotations

import mimetypes
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediapipe.mediatypes import (
    KNOWN_EXTENSIONS,
    ContentTypeVerdict,
    classify_content_type,
    essence,
    extension_for_mime,
    normalize_ext,
    url_extension,
)

FUZZ_EXAMPLES = int(os.environ.get("MEDIAPIPE_FUZZ_EXAMPLES", "300"))
DEFAULT_TYPES = ("image/*", "audio/*", "video/*")

# Every entry of the MIME → extension table, written out so that a lost or changed entry fails.
MIME_EXTENSIONS = {
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

KNOWN = {
    ".jpg", ".jpeg", ".jpe", ".png", ".gif", ".webp", ".avif", ".heic", ".heif", ".bmp",
    ".tif", ".tiff", ".ico", ".svg", ".jxl", ".jp2", ".qoi",
    ".mp3", ".mp2", ".aac", ".wav", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".mka",
    ".aiff", ".aif", ".aifc", ".au", ".snd", ".ac3", ".dts", ".amr", ".awb", ".mid", ".midi",
    ".caf", ".ape", ".wv", ".wma", ".ra",
    ".mp4", ".m4v", ".mov", ".qt", ".ogv", ".webm", ".mkv", ".avi", ".3gp", ".3g2", ".mpg",
    ".mpeg", ".m1v", ".m2v", ".wmv", ".asf", ".flv", ".ts", ".m2ts", ".mts",
}  # fmt: skip


@pytest.mark.parametrize(("mime", "ext"), sorted(MIME_EXTENSIONS.items()))
def test_extension_for_every_table_entry(mime: str, ext: str) -> None:
    assert extension_for_mime(mime) == ext
    assert extension_for_mime(mime.upper() + "; q=1") == ext
    assert ext in KNOWN_EXTENSIONS


@pytest.mark.parametrize(
    ("mime", "expected"),
    [
        # Not in the table: the standard library's defaults, when the extension is known.
        ("audio/x-pn-realaudio", ".ra"),
        ("Audio/X-PN-RealAudio; x=1", ".ra"),
        ("video/x-sgi-movie", ""),  # ".movie" is no known media extension
        ("image/x-portable-pixmap", ""),
        ("image/ief", ""),
        ("application/x-tar", ""),  # only media types fall back
        ("application/pdf", ""),
        ("text/html", ""),
        ("audio/x-unknown", ""),
        ("audio/", ""),
        ("", ""),
        (" ; x=y", ""),
        (None, ""),
    ],
)
def test_extension_fallback(mime: str | None, expected: str) -> None:
    assert extension_for_mime(mime) == expected


def test_standard_fallback_only_gives_known_extensions() -> None:
    table = mimetypes.MimeTypes()
    media = [
        kind
        for kind in table.types_map_inv[True]
        if kind.split("/")[0] in ("image", "audio", "video")
    ]
    assert len(media) > 20
    for kind in media:
        assert extension_for_mime(kind) in KNOWN_EXTENSIONS | {""}, kind


@pytest.mark.parametrize("ext", sorted(KNOWN))
def test_known_extensions(ext: str) -> None:
    assert ext in KNOWN_EXTENSIONS
    assert len(ext) <= 5  # the longest bare name (naming.MIN_NAME_BYTES) counts on it


def test_known_extensions_are_exactly_these() -> None:
    assert set(KNOWN_EXTENSIONS) == KNOWN


@pytest.mark.parametrize("ext", [".txt", ".html", ".json", ".exe", ".pdf", ".zip", "png", ""])
def test_unknown_extensions(ext: str) -> None:
    assert ext not in KNOWN_EXTENSIONS


@pytest.mark.parametrize(
    ("ext", "expected"),
    [
        (".PNG", ".png"),
        ("png", ".png"),
        (" .Png ", ".png"),
        ("..png", ".png"),
        (".jpeg", ".jpg"),
        ("JPE", ".jpg"),
        (".jpg", ".jpg"),
        (".tif", ".tif"),
        (".jpeg2", ".jpeg2"),
        ("Xpng", ".xpng"),
        ("", ""),
        (".", ""),
        (" ", ""),
    ],
)
def test_normalize_ext(ext: str, expected: str) -> None:
    assert normalize_ext(ext) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://x.test/a/photo.PNG", ".png"),
        ("https://x.test/a/photo.jpeg?v=1.txt", ".jpg"),
        ("https://x.test/a/notes.txt", ""),
        ("https://x.test/a/noext", ""),
        ("https://x.test/a.png/noext", ""),
        ("https://x.test/a/clip.mp4#t=1.gif", ".mp4"),
        ("https://x.test/a/%E7%8C%AB.webp", ".webp"),
        ("https://x.test/a/a%2Eflac", ".flac"),
        ("https://x.test/a/song.mp3;jsessionid=abc", ".mp3"),
        ("https://x.test/a/song;v=1.mp3", ""),
        ("https://x.test/a/b.c.m2ts", ".m2ts"),
        ("https://x.test/.png", ""),
        ("https://x.test/a/b.", ""),
        ("https://[::1/bad.png", ""),
        ("photo.gif", ".gif"),
        ("", ""),
        (None, ""),
    ],
)
def test_url_extension(url: str | None, expected: str) -> None:
    assert url_extension(url) == expected


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("image/png", "image/png"),
        ("Image/PNG; charset=binary", "image/png"),
        (b"  video/MP4 ;codecs=avc1", "video/mp4"),
        (b"image/\xe9", "image/\xe9"),
        ("image/png;", "image/png"),
        ("a;b;c", "a"),
        ("", None),
        (" ; charset=x", None),
        (b"", None),
        (None, None),
    ],
)
def test_essence(content_type: str | bytes | None, expected: str | None) -> None:
    assert essence(content_type) == expected


@pytest.mark.parametrize(
    ("content_type", "allowed", "expected"),
    [
        ("image/png; charset=binary", DEFAULT_TYPES, ContentTypeVerdict.ACCEPT),
        ("IMAGE/PNG", DEFAULT_TYPES, ContentTypeVerdict.ACCEPT),
        (b"image/png", DEFAULT_TYPES, ContentTypeVerdict.ACCEPT),
        ("image/svg+xml", DEFAULT_TYPES, ContentTypeVerdict.ACCEPT),
        ("audio/mpeg", DEFAULT_TYPES, ContentTypeVerdict.ACCEPT),
        ("video/webm", DEFAULT_TYPES, ContentTypeVerdict.ACCEPT),
        ("text/html; charset=utf-8", DEFAULT_TYPES, ContentTypeVerdict.REFUSE),
        ("application/json", DEFAULT_TYPES, ContentTypeVerdict.REFUSE),
        ("imagex/png", DEFAULT_TYPES, ContentTypeVerdict.REFUSE),
        ("image", DEFAULT_TYPES, ContentTypeVerdict.REFUSE),
        (None, DEFAULT_TYPES, ContentTypeVerdict.SNIFF),
        ("", DEFAULT_TYPES, ContentTypeVerdict.SNIFF),
        ("application/octet-stream", DEFAULT_TYPES, ContentTypeVerdict.SNIFF),
        ("Binary/Octet-Stream; x=1", DEFAULT_TYPES, ContentTypeVerdict.SNIFF),
        ("application/octet-stream", ["image/png"], ContentTypeVerdict.SNIFF),
        ("application/octet-streams", DEFAULT_TYPES, ContentTypeVerdict.REFUSE),
        ("image/png", ["image/png"], ContentTypeVerdict.ACCEPT),
        ("image/gif", ["image/png"], ContentTypeVerdict.REFUSE),
        ("image/png2", ["image/png"], ContentTypeVerdict.REFUSE),
        ("image/gif", ["IMAGE/GIF "], ContentTypeVerdict.ACCEPT),
        ("image/gif", ["image/gif; q=0.5"], ContentTypeVerdict.ACCEPT),
        ("image/gif", "image/*", ContentTypeVerdict.ACCEPT),  # a lone pattern, not its letters
        ("i", "image/*", ContentTypeVerdict.REFUSE),
        ("image/gif", ["audio/*", "image/*"], ContentTypeVerdict.ACCEPT),
        ("text/html", ["*/*"], ContentTypeVerdict.ACCEPT),
        ("text/html", ["*"], ContentTypeVerdict.ACCEPT),
        ("text/html", ["text*"], ContentTypeVerdict.REFUSE),
        ("text/html", [], ContentTypeVerdict.REFUSE),
        ("text/html", ["", " "], ContentTypeVerdict.REFUSE),
    ],
)
def test_classify_content_type(
    content_type: str | bytes | None, allowed: list[str], expected: ContentTypeVerdict
) -> None:
    assert classify_content_type(content_type, allowed) is expected


def test_content_type_verdict_values() -> None:
    assert [verdict.value for verdict in ContentTypeVerdict] == ["accept", "sniff", "refuse"]


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None)
@given(
    content_type=st.one_of(st.none(), st.text(), st.binary()),
    allowed=st.lists(st.text(max_size=12), max_size=4),
)
def test_content_type_rules_never_raise(
    content_type: str | bytes | None, allowed: list[str]
) -> None:
    kind = essence(content_type)
    verdict = classify_content_type(content_type, allowed)

    assert kind is None or kind == kind.strip().lower()
    assert isinstance(verdict, ContentTypeVerdict)
    ext = extension_for_mime(kind)
    assert ext == "" or ext in KNOWN_EXTENSIONS


def test_the_table_is_ours_whatever_the_standard_library_knows() -> None:
    # Python's mimetypes defaults change between versions; every entry above must be in the
    # module's own table, not found by the fallback.
    from mediapipe import mediatypes

    assert mediatypes._EXTENSION_FOR_MIME == MIME_EXTENSIONS


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("image/x-new", ".png"),
        ("audio/x-new", ".flac"),
        ("video/x-new", ".mkv"),
        ("video/x-long", ".mkv"),  # the first known extension counts
        ("video/x-unknown-ext", ""),
        ("video/x-loose", ""),  # only the strict (registered) defaults count
        ("application/x-new", ""),
        ("text/x-new", ""),
    ],
)
def test_standard_fallback_rules(monkeypatch: pytest.MonkeyPatch, kind: str, expected: str) -> None:
    from mediapipe import mediatypes

    table = mimetypes.MimeTypes()
    for mime, ext in [
        ("image/x-new", ".png"), ("audio/x-new", ".FLAC"), ("video/x-new", ".mkv"),
        ("video/x-long", ".movie"), ("video/x-long", ".mkv"), ("video/x-long", ".webm"),
        ("video/x-unknown-ext", ".movie"), ("application/x-new", ".png"), ("text/x-new", ".png"),
    ]:  # fmt: skip
        table.add_type(mime, ext)
    table.add_type("video/x-loose", ".mkv", strict=False)
    monkeypatch.setattr(mediatypes, "_standard_types", lambda: table)
    assert extension_for_mime(kind) == expected


def test_standard_table_is_built_once() -> None:
    from mediapipe import mediatypes

    assert mediatypes._standard_types() is mediatypes._standard_types()
