from __future__ import annotations

import os
import random
import wave
from collections.abc import Callable
from io import BytesIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from mediapipe.mediatypes import KNOWN_EXTENSIONS
from mediapipe.sniff import SNIFF_BYTES, MediaFormat, Verdict, judge_body, looks_textual, sniff

FUZZ_EXAMPLES = int(os.environ.get("MEDIAPIPE_FUZZ_EXAMPLES", "300"))

# --- sample builders --------------------------------------------------------------------------


def pillow_image(image_format: str) -> bytes:
    buffer = BytesIO()
    Image.new("RGB", (3, 2), "red").save(buffer, format=image_format)
    return buffer.getvalue()


def wav_file() -> bytes:
    buffer = BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(b"\x00\x00" * 80)
    return buffer.getvalue()


MP3_FRAME_HEADER = b"\xff\xfb\x90\x64"  # MPEG-1 Layer III, 128 kbit/s, 44.1 kHz: 417-byte frames
MP3_FRAME = MP3_FRAME_HEADER + bytes(417 - 4)
MPEG2_FRAME_HEADER = b"\xff\xf3\x80\xc4"  # MPEG-2 Layer III, 64 kbit/s, 22.05 kHz


def id3_tag(body: bytes = b"TIT2\x00\x00\x00\x03\x00\x00\x00hi") -> bytes:
    size = len(body)
    syncsafe = bytes((size >> shift) & 0x7F for shift in (21, 14, 7, 0))
    return b"ID3\x04\x00\x00" + syncsafe + body


def adts_frame(length: int = 64) -> bytes:
    # MPEG-4 AAC LC, 44.1 kHz, stereo, no CRC, with the 13-bit frame length spread over 3 bytes.
    header = bytes(
        (0xFF, 0xF1, 0x50, 0x80 | (length >> 11), (length >> 3) & 0xFF, (length & 7) << 5 | 0x1F)
    )
    return header + b"\xfc" + bytes(length - 7)


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    size = 16 + 4 * len(compatible)
    box = size.to_bytes(4, "big") + b"ftyp" + major + b"\x00\x00\x02\x00" + b"".join(compatible)
    return box + b"\x00\x00\x00\x08free\x00\x00\x00\x10mdat" + bytes(8)


def ebml(doc_type: bytes | None) -> bytes:
    elements = b"\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08"
    if doc_type is not None:
        elements += b"\x42\x82" + bytes((0x80 | len(doc_type),)) + doc_type
    elements += b"\x42\x87\x81\x04\x42\x85\x81\x02"
    header = b"\x1a\x45\xdf\xa3" + bytes((0x80 | len(elements),)) + elements
    return header + b"\x18\x53\x80\x67\x01\x00\x00\x00\x00\x00\x00\x00"


def ogg_page(payload: bytes) -> bytes:
    fixed = b"OggS\x00\x02" + bytes(8) + b"\x01\x00\x00\x00" + bytes(4) + bytes(4)
    return fixed + bytes((1, len(payload))) + payload


def riff(form: bytes, chunk: bytes) -> bytes:
    body = form + chunk
    return b"RIFF" + len(body).to_bytes(4, "little") + body


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="3" height="2"><rect/></svg>'
SVG_PROLOG = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
    b"<!-- Generator: a drawing program, with -- dashes > and <angle> brackets -->\n"
    b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN"\n'
    b'  "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n'
)


JPG = ("image/jpeg", ".jpg", "image", True)
PNG = ("image/png", ".png", "image", True)
GIF = ("image/gif", ".gif", "image", True)
WEBP = ("image/webp", ".webp", "image", True)
BMP = ("image/bmp", ".bmp", "image", True)
TIFF = ("image/tiff", ".tiff", "image", True)
ICO = ("image/x-icon", ".ico", "image", True)
AVIF = ("image/avif", ".avif", "image", True)
HEIC = ("image/heic", ".heic", "image", False)
HEIF = ("image/heif", ".heif", "image", False)
SVG_FORMAT = ("image/svg+xml", ".svg", "image", False)
MP3 = ("audio/mpeg", ".mp3", "audio", False)
AAC = ("audio/aac", ".aac", "audio", False)
FLAC = ("audio/flac", ".flac", "audio", False)
WAV = ("audio/wav", ".wav", "audio", False)
OGG = ("audio/ogg", ".ogg", "audio", False)
OPUS = ("audio/ogg", ".opus", "audio", False)
OGV = ("video/ogg", ".ogv", "video", False)
M4A = ("audio/mp4", ".m4a", "audio", False)
MP4 = ("video/mp4", ".mp4", "video", False)
M4V = ("video/mp4", ".m4v", "video", False)
MOV = ("video/quicktime", ".mov", "video", False)
THREE_GP = ("video/3gpp", ".3gp", "video", False)
THREE_G2 = ("video/3gpp2", ".3g2", "video", False)
WEBM = ("video/webm", ".webm", "video", False)
MKV = ("video/x-matroska", ".mkv", "video", False)
AVI = ("video/x-msvideo", ".avi", "video", False)

Expected = tuple[str, str, str, bool]
Sample = tuple[str, Callable[[], bytes], Expected]

SAMPLES: list[Sample] = [
    ("jpeg", lambda: pillow_image("JPEG"), JPG),
    ("png", lambda: pillow_image("PNG"), PNG),
    ("gif", lambda: pillow_image("GIF"), GIF),
    ("gif87a", lambda: b"GIF87a\x01\x00\x01\x00\x00\x00\x00;", GIF),
    ("webp", lambda: pillow_image("WEBP"), WEBP),
    ("bmp", lambda: pillow_image("BMP"), BMP),
    ("tiff-little-endian", lambda: pillow_image("TIFF"), TIFF),
    ("tiff-big-endian", lambda: b"MM\x00*\x00\x00\x00\x08" + bytes(16), TIFF),
    ("ico", lambda: pillow_image("ICO"), ICO),
    ("avif", lambda: ftyp(b"avif", b"mif1", b"miaf"), AVIF),
    ("avif-sequence", lambda: ftyp(b"avis", b"msf1"), AVIF),
    ("avif-under-mif1", lambda: ftyp(b"mif1", b"mif1", b"avif"), AVIF),
    ("heic", lambda: ftyp(b"heic", b"mif1", b"heic"), HEIC),
    ("heic-under-mif1", lambda: ftyp(b"mif1", b"mif1", b"heic"), HEIC),
    ("heic-sequence", lambda: ftyp(b"msf1", b"hevc"), HEIC),
    ("heif-generic", lambda: ftyp(b"mif1", b"mif1", b"miaf"), HEIF),
    ("svg", lambda: SVG, SVG_FORMAT),
    ("svg-prolog", lambda: SVG_PROLOG + SVG, SVG_FORMAT),
    ("svg-bom", lambda: b"\xef\xbb\xbf \n" + SVG, SVG_FORMAT),
    ("svg-internal-subset", lambda: b'<!DOCTYPE svg [ <!ENTITY e "<x>"> ]>' + SVG, SVG_FORMAT),
    ("svg-after-long-comment", lambda: b"<!--" + b"x" * 3000 + b"-->" + SVG, SVG_FORMAT),
    ("mp3-frame", lambda: MP3_FRAME_HEADER + bytes(100), MP3),
    ("mp3-two-frames", lambda: MP3_FRAME * 2, MP3),
    ("mp3-mpeg2", lambda: MPEG2_FRAME_HEADER + bytes(100), MP3),
    ("mp3-id3", lambda: id3_tag() + MP3_FRAME, MP3),
    ("mp3-id3-huge", lambda: id3_tag(bytes(100_000)), MP3),
    ("flac-id3", lambda: id3_tag() + b"fLaC" + bytes(40), FLAC),
    ("aac-id3", lambda: id3_tag() + adts_frame(), AAC),
    ("aac-adts", lambda: adts_frame() * 2, AAC),
    ("wav", wav_file, WAV),
    ("flac", lambda: b"fLaC\x00\x00\x00\x22" + bytes(34), FLAC),
    ("ogg-vorbis", lambda: ogg_page(b"\x01vorbis" + bytes(23)), OGG),
    ("ogg-opus", lambda: ogg_page(b"OpusHead\x01\x02" + bytes(9)), OPUS),
    ("ogg-theora", lambda: ogg_page(b"\x80theora" + bytes(35)), OGV),
    ("m4a", lambda: ftyp(b"M4A ", b"M4A ", b"mp42", b"isom"), M4A),
    ("m4b", lambda: ftyp(b"M4B "), M4A),
    ("mp4-isom", lambda: ftyp(b"isom", b"isom", b"iso2", b"avc1", b"mp41"), MP4),
    ("mp4-mp42", lambda: ftyp(b"mp42", b"isom"), MP4),
    ("mp4-dash", lambda: ftyp(b"dash", b"iso6"), MP4),
    ("mp4-unknown-major", lambda: ftyp(b"zzzz", b"yyyy", b"isom"), MP4),
    ("m4v", lambda: ftyp(b"M4V ", b"M4V ", b"M4A "), M4V),
    ("mov", lambda: ftyp(b"qt  ", b"qt  "), MOV),
    ("mov-legacy", lambda: b"\x00\x00\x00\x08wide\x00\x00\x10\x00mdat" + bytes(32), MOV),
    ("3gp", lambda: ftyp(b"3gp5", b"3gp5", b"isom"), THREE_GP),
    ("3g2", lambda: ftyp(b"3g2a"), THREE_G2),
    ("webm", lambda: ebml(b"webm"), WEBM),
    ("mkv", lambda: ebml(b"matroska"), MKV),
    ("mkv-default-doctype", lambda: ebml(None), MKV),
    ("avi", lambda: riff(b"AVI ", b"LIST\x04\x00\x00\x00hdrl"), AVI),
]
SAMPLE_PARAMS = [pytest.param(build, expected, id=name) for name, build, expected in SAMPLES]


@pytest.mark.parametrize(("build", "expected"), SAMPLE_PARAMS)
def test_sniff_recognises(build: Callable[[], bytes], expected: Expected) -> None:
    found = sniff(build())

    assert found is not None
    assert (found.mime, found.ext, found.kind, found.raster) == expected
    assert found.ext in KNOWN_EXTENSIONS


def test_sniff_recognises_a_real_avif() -> None:
    assert sniff(pillow_image("AVIF")) == MediaFormat("image/avif", ".avif", "image", True)


@pytest.mark.parametrize(
    "image_format",
    [
        "JPEG",
        "PNG",
        "GIF",
        "WEBP",
        "BMP",
        "TIFF",
        "ICO",
        pytest.param("AVIF"),
    ],
)
def test_raster_formats_are_readable_by_pillow(image_format: str) -> None:
    data = pillow_image(image_format)
    found = sniff(data)

    assert found is not None
    assert found.raster
    with Image.open(BytesIO(data)) as image:
        assert image.size == (3, 2)


@pytest.mark.parametrize(("build", "expected"), SAMPLE_PARAMS)
def test_media_never_looks_textual(build: Callable[[], bytes], expected: Expected) -> None:
    assert looks_textual(build()) is False


def _random_bytes(seed: int) -> bytes:
    return random.Random(seed).randbytes(SNIFF_BYTES)


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"<!DOCTYPE html><html><body>Not found</body></html>", id="html"),
        pytest.param(b"<html lang=en>", id="html-tag"),
        pytest.param(b'{"error": "forbidden"}', id="json"),
        pytest.param(b"[1, 2, 3]", id="json-array"),
        pytest.param(b"Not Found\n", id="text"),
        pytest.param(b'<?xml version="1.0"?><Error><Code>AccessDenied</Code></Error>', id="xml"),
        pytest.param(b"<svgfoo/>", id="not-svg-element"),
        pytest.param(b"<!--" + b"x" * SNIFF_BYTES + b"-->" + SVG, id="svg-beyond-sniff-bytes"),
        pytest.param(b"BMW is a brand of cars", id="bm-text"),
        pytest.param(b"\xff\xff\xff\xff" + bytes(64), id="mpeg-reserved-bits"),
        pytest.param(b"\xff\xfb\xf0\x64" + bytes(64), id="mpeg-bad-bitrate"),
        pytest.param(b"\xff\xfb\x00\x64" + bytes(64), id="mpeg-free-bitrate"),
        pytest.param(b"\xff\xfb\x9c\x64" + bytes(64), id="mpeg-reserved-sample-rate"),
        pytest.param(b"\xff\xeb\x90\x64" + bytes(64), id="mpeg-reserved-version"),
        pytest.param(b"\xff\xfb\x90\x66" + bytes(64), id="mpeg-reserved-emphasis"),
        pytest.param(b"\xff\xfd\x90\x64" + bytes(64), id="mpeg-layer-2"),
        pytest.param(b"\xff\xf9\x90\x64" + bytes(64), id="adts-zero-length"),
        pytest.param(MP3_FRAME + b"\x12\x34\x56\x78", id="mpeg-second-frame-missing"),
        pytest.param(b"ID3\xff\x00\x00\x00\x00\x00\x00", id="id3-bad-version"),
        pytest.param(b"ID3\x04\x00\x00\x80\x00\x00\x00", id="id3-bad-size"),
        pytest.param(ftyp(b"zzzz", b"yyyy"), id="ftyp-unknown-brands"),
        pytest.param(b"\x00\x00\x00\x09ftypisom" + bytes(8), id="ftyp-bad-size"),
        pytest.param(ebml(b"foo"), id="ebml-unknown-doctype"),
        pytest.param(riff(b"XXXX", bytes(8)), id="riff-unknown-form"),
        pytest.param(b"\x00\x00\x01\x00\x00\x00", id="ico-no-images"),
        *(pytest.param(_random_bytes(seed), id=f"random-{seed}") for seed in range(8)),
    ],
)
def test_sniff_rejects(head: bytes) -> None:
    assert sniff(head) is None


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param(b"<!DOCTYPE html><html>", True, id="doctype"),
        pytest.param(b"\xef\xbb\xbf \r\n<HTML><HEAD>", True, id="bom-uppercase"),
        pytest.param(b"<p>hi", True, id="p"),
        pytest.param(b"<script>alert(1)</script>", True, id="script"),
        pytest.param(b"<html><body>caf\xe9</body></html>", True, id="latin-1-html"),
        pytest.param(b"<!-- a comment -->\n<div>", True, id="comment"),
        pytest.param(b'<?xml version="1.0"?><Error/>', True, id="xml-error"),
        pytest.param(b'  {"ok": false}', True, id="json"),
        pytest.param(b"[]", True, id="json-array"),
        pytest.param(b"Access denied.\n", True, id="text"),
        pytest.param("Доступ запрещён 猫".encode(), True, id="utf8-text"),
        pytest.param("猫".encode() * 2000, True, id="utf8-cut-mid-character"),
        pytest.param("plain text".encode("utf-16"), True, id="utf16-with-bom"),
        pytest.param(b"Zugriff verweigert: \xfcberpr\xfcfen Sie", True, id="windows-1252-text"),
        pytest.param(b"", False, id="empty"),
        pytest.param(SVG, False, id="svg"),
        pytest.param(SVG_PROLOG + SVG, False, id="svg-prolog"),
        pytest.param(b"text with a \x00 nul", False, id="nul"),
        pytest.param(b'{"a": "\x00"}', False, id="json-with-nul"),
        pytest.param(b"\x01\x02\x03\x04 mostly control \x05\x06\x07\x08", False, id="controls"),
        pytest.param(
            b"\x80\x81\x82 some ascii \x90\x91\x92\x93\x94\x95\x96\x97", False, id="high-bytes"
        ),
        pytest.param(_random_bytes(99), False, id="random"),
    ],
)
def test_looks_textual(head: bytes, expected: bool) -> None:
    assert looks_textual(head) is expected


UNKNOWN_BINARY = b"\x00\x01\x02\x03\xfe\xfd" * 10


@pytest.mark.parametrize(
    ("declared", "head", "url", "expected"),
    [
        pytest.param("image/png", b"", None, Verdict("image/png", "", False, "empty"), id="empty"),
        pytest.param(None, b"", None, Verdict(None, "", False, "empty"), id="empty-untyped"),
        pytest.param(
            "image/png",
            pillow_image("JPEG"),
            None,
            Verdict("image/jpeg", ".jpg", True, None),
            id="sniffed-beats-declared",
        ),
        pytest.param(
            None, SVG, None, Verdict("image/svg+xml", ".svg", False, None), id="sniffed-svg"
        ),
        pytest.param(
            "application/octet-stream",
            ebml(b"webm"),
            "https://x.test/a.bin",
            Verdict("video/webm", ".webm", False, None),
            id="sniffed-octet-stream",
        ),
        pytest.param(
            "image/png",
            b"<html><body>404</body></html>",
            None,
            Verdict("image/png", "", False, "content-mismatch"),
            id="html-under-image",
        ),
        pytest.param(
            "audio/mpeg",
            b'{"error": "gone"}',
            None,
            Verdict("audio/mpeg", "", False, "content-mismatch"),
            id="json-under-audio",
        ),
        pytest.param(
            None,
            b"just text",
            None,
            Verdict(None, "", False, "content-mismatch"),
            id="text-untyped",
        ),
        pytest.param(
            "application/octet-stream",
            UNKNOWN_BINARY,
            "https://x.test/a.mp3",
            Verdict("application/octet-stream", "", False, "unknown-format"),
            id="octet-unknown",
        ),
        pytest.param(
            "binary/octet-stream",
            UNKNOWN_BINARY,
            None,
            Verdict("binary/octet-stream", "", False, "unknown-format"),
            id="binary-octet-unknown",
        ),
        pytest.param(
            None, UNKNOWN_BINARY, None, Verdict(None, "", False, "unknown-format"), id="untyped"
        ),
        pytest.param(
            "audio/mpeg",
            UNKNOWN_BINARY,
            "https://x.test/a.mp3",
            Verdict("audio/mpeg", "", False, "unknown-format"),
            id="checkable-audio-unknown",
        ),
        pytest.param(
            "Video/MP4; codecs=avc1",
            UNKNOWN_BINARY,
            None,
            Verdict("video/mp4", "", False, "unknown-format"),
            id="checkable-video-unknown",
        ),
        pytest.param(
            "audio/x-pn-realaudio",
            UNKNOWN_BINARY,
            "https://x.test/a.mp3",
            Verdict("audio/x-pn-realaudio", ".ra", False, None),
            id="audio-named-from-standard-table",
        ),
        pytest.param(
            "Audio/X-Unknown; rate=1",
            UNKNOWN_BINARY,
            "https://x.test/track.FLAC?x=1",
            Verdict("audio/x-unknown", ".flac", False, None),
            id="audio-named-from-url",
        ),
        pytest.param(
            "video/x-unknown",
            UNKNOWN_BINARY,
            "https://x.test/notes.txt",
            Verdict("video/x-unknown", "", False, None),
            id="video-unnamed-txt-url",
        ),
        pytest.param(
            "video/x-unknown",
            UNKNOWN_BINARY,
            None,
            Verdict("video/x-unknown", "", False, None),
            id="video-unnamed",
        ),
        pytest.param(
            "image/png",
            UNKNOWN_BINARY,
            "https://x.test/a.png",
            Verdict("image/png", "", False, "unknown-format"),
            id="image-unknown",
        ),
        pytest.param(
            "application/pdf",
            b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n\x00\x01",
            None,
            Verdict("application/pdf", "", False, "content-mismatch"),
            id="pdf",
        ),
    ],
)
def test_judge_body(declared: str | None, head: bytes, url: str | None, expected: Verdict) -> None:
    assert judge_body(declared, head, url) == expected


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None)
@given(head=st.binary(max_size=SNIFF_BYTES + 16), declared=st.one_of(st.none(), st.text()))
def test_body_rules_never_raise(head: bytes, declared: str | None) -> None:
    found = sniff(head)
    textual = looks_textual(head)
    verdict = judge_body(declared, head, "https://x.test/a.mp3")

    assert not (found is not None and textual)
    assert verdict.reason in (None, "empty", "content-mismatch", "unknown-format")
    if verdict.reason is None:
        assert verdict.mime is not None
    else:
        assert (verdict.ext, verdict.raster) == ("", False)
    if head and found is not None:
        assert verdict == Verdict(found.mime, found.ext, found.raster, None)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None)
@given(sample=st.sampled_from(SAMPLES), cut=st.integers(min_value=0, max_value=SNIFF_BYTES))
def test_truncated_samples_never_raise(sample: Sample, cut: int) -> None:
    head = sample[1]()[:cut]
    found = sniff(head)
    assert found is None or found.ext in KNOWN_EXTENSIONS
    assert not (found is not None and looks_textual(head))
