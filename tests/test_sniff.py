from __future__ import annotations

import bz2
import gzip
import lzma
import os
import random
import sqlite3
import tarfile
import wave
import zipfile
from collections.abc import Callable
from io import BytesIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from mediapipe.mediatypes import KNOWN_EXTENSIONS, essence
from mediapipe.sniff import (
    SNIFF_BYTES,
    MediaFormat,
    Verdict,
    can_verify,
    judge_body,
    looks_textual,
    non_media,
    sniff,
)
from tests.test_mediatypes import MIME_EXTENSIONS

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


# --- formats added with the wider sniffer -----------------------------------------------------


def png_bytes(
    colour: int = 2,
    depth: int = 8,
    width: int = 3,
    height: int = 2,
    tail: bytes = b"\x00" * 3,
    chunk: bytes = b"\x00\x00\x00\x0dIHDR",
) -> bytes:
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes((depth, colour)) + tail
    return b"\x89PNG\r\n\x1a\n" + chunk + ihdr + b"\x12\x34\x56\x78" + bytes(12)


def be32(value: int) -> bytes:
    return value.to_bytes(4, "big")


def iff(form: bytes) -> bytes:
    comm = b"COMM" + be32(18) + b"\x00\x01" + be32(8000) + b"\x00\x10" + bytes(10)
    return b"FORM" + be32(4 + len(comm)) + form + comm


def au(offset: int = 24, encoding: int = 3, channels: int = 1) -> bytes:
    return b".snd" + be32(offset) + be32(0xFFFFFFFF) + be32(encoding) + be32(8000) + be32(channels)


def flv(flags: int = 5, header_size: int = 9) -> bytes:
    return b"FLV\x01" + bytes((flags,)) + be32(header_size) + bytes(4)


ASF_HEADER = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
ASF_STREAM_PROPERTIES = bytes.fromhex("9107dcb7b7a9cf118ee600c00c205365")
ASF_VIDEO = bytes.fromhex("c0ef19bc4d5bcf11a8fd00805f5c442b")
ASF_AUDIO = bytes.fromhex("409e69f84d5bcf11a8fd00805f5c442b")


def asf(*streams: bytes) -> bytes:
    objects = b"".join(ASF_STREAM_PROPERTIES + (78).to_bytes(8, "little") + s for s in streams)
    return (
        ASF_HEADER
        + (30 + len(objects)).to_bytes(8, "little")
        + b"\x01\x00\x00\x00\x01\x02"
        + objects
    )


def ts_packets(count: int, size: int = 188, start: int = 0) -> bytes:
    packet = bytes(start) + b"\x47\x40\x00\x10" + bytes(size - start - 4)
    return packet * count


MPEG2_PACK = b"\x00\x00\x01\xba\x44\x00\x04\x00\x04\x01\x01\x89\xc3\xf8"
MPEG1_PACK = b"\x00\x00\x01\xba\x21\x00\x01\x00\x01\x80\x00\x01"
# 352 x 240, square pels (1), 29.97 frames/s (4).
MPEG_SEQUENCE = b"\x00\x00\x01\xb3\x16\x00\xf0\x14\xff\xff\xe0\x18"


def ac3_frame(rate_code: int = 0, size_code: int = 20, bsid: int = 8) -> bytes:
    header = b"\x0b\x77\x12\x34" + bytes((rate_code << 6 | size_code, bsid << 3))
    return header + bytes(ac3_length(rate_code, size_code) - len(header))


AC3_KBPS = [32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 576, 640]


def ac3_length(rate_code: int, size_code: int) -> int:
    kbps = AC3_KBPS[size_code // 2]
    if rate_code == 0:  # 48 kHz
        return 4 * kbps
    if rate_code == 2:  # 32 kHz
        return 6 * kbps
    return 2 * (kbps * 96000 // 44100 + size_code % 2)


def ape(version: int = 3990) -> bytes:
    return b"MAC " + version.to_bytes(2, "little") + bytes(46)


def wavpack(version: int = 0x410) -> bytes:
    return b"wvpk" + (1000).to_bytes(4, "little") + version.to_bytes(2, "little") + bytes(22)


def qoi(width: int = 3, height: int = 2, channels: int = 3, colorspace: int = 0) -> bytes:
    return b"qoif" + be32(width) + be32(height) + bytes((channels, colorspace)) + bytes(8)


JXL = ("image/jxl", ".jxl", "image", False)
JP2 = ("image/jp2", ".jp2", "image", True)
QOI = ("image/qoi", ".qoi", "image", True)
AIFF = ("audio/aiff", ".aiff", "audio", False)
AIFC = ("audio/aiff", ".aifc", "audio", False)
AU = ("audio/basic", ".au", "audio", False)
AC3 = ("audio/ac3", ".ac3", "audio", False)
DTS = ("audio/vnd.dts", ".dts", "audio", False)
AMR = ("audio/amr", ".amr", "audio", False)
AMR_WB = ("audio/amr-wb", ".awb", "audio", False)
MIDI = ("audio/midi", ".mid", "audio", False)
CAF = ("audio/x-caf", ".caf", "audio", False)
APE = ("audio/x-ape", ".ape", "audio", False)
WAVPACK = ("audio/x-wavpack", ".wv", "audio", False)
WMA = ("audio/x-ms-wma", ".wma", "audio", False)
WMV = ("video/x-ms-wmv", ".wmv", "video", False)
ASF = ("video/x-ms-asf", ".asf", "video", False)
FLV = ("video/x-flv", ".flv", "video", False)
TS = ("video/mp2t", ".ts", "video", False)
M2TS = ("video/mp2t", ".m2ts", "video", False)
MPEG_VIDEO = ("video/mpeg", ".mpg", "video", False)

NEW_SAMPLES: list[Sample] = [
    ("png-built", png_bytes, PNG),
    ("png-cut-before-ihdr-ends", lambda: png_bytes()[:28], PNG),
    ("png-signature-only", lambda: b"\x89PNG\r\n\x1a\n", PNG),
    ("jpeg-2000", lambda: pillow_image("JPEG2000"), JP2),
    ("qoi", lambda: pillow_image("QOI"), QOI),
    ("qoi-rgba-linear", lambda: qoi(channels=4, colorspace=1), QOI),
    ("jxl-codestream", lambda: b"\xff\x0a\xfa\x7f\x01\x90\x08" + bytes(40), JXL),
    ("jxl-container", lambda: b"\x00\x00\x00\x0cJXL \r\n\x87\n" + ftyp(b"jxl ", b"jxl "), JXL),
    ("wav-rf64", lambda: b"RF64\xff\xff\xff\xffWAVEds64" + bytes(28), WAV),
    ("wav-bw64", lambda: b"BW64\xff\xff\xff\xffWAVEds64" + bytes(28), WAV),
    ("aiff", lambda: iff(b"AIFF"), AIFF),
    ("aifc", lambda: iff(b"AIFC"), AIFC),
    ("au", au, AU),
    ("au-long-header", lambda: au(offset=32) + b"comment\x00", AU),
    ("au-last-encoding", lambda: au(encoding=27), AU),
    ("au-stereo", lambda: au(channels=2), AU),
    ("flv-audio-video", flv, FLV),
    ("flv-video", lambda: flv(flags=1), FLV),
    ("flv-no-streams", lambda: flv(flags=0), FLV),
    ("wmv", lambda: asf(ASF_AUDIO, ASF_VIDEO), WMV),
    ("wma", lambda: asf(ASF_AUDIO), WMA),
    ("asf", lambda: asf(), ASF),
    ("mpeg-ts", lambda: ts_packets(6), TS),
    ("mpeg-ts-five-packets", lambda: ts_packets(5), TS),
    ("mpeg-ts-cut-mid-packet", lambda: ts_packets(5) + b"\x47\x40", TS),
    ("mpeg-ts-long", lambda: ts_packets(40), TS),
    ("m2ts", lambda: ts_packets(6, 192, 4), M2TS),
    ("mpeg-ps-mpeg2", lambda: MPEG2_PACK + bytes(40), MPEG_VIDEO),
    ("mpeg-ps-mpeg1", lambda: MPEG1_PACK + bytes(40), MPEG_VIDEO),
    ("mpeg-video-sequence", lambda: MPEG_SEQUENCE + bytes(40), MPEG_VIDEO),
    ("ac3", lambda: ac3_frame() * 2, AC3),
    ("ac3-one-frame-in-view", lambda: ac3_frame(size_code=37), AC3),
    ("ac3-44k", lambda: ac3_frame(1, 9) * 2, AC3),
    ("dts", lambda: b"\x7f\xfe\x80\x01\xfc\x3c" + bytes(40), DTS),
    ("dts-little-endian", lambda: b"\xfe\x7f\x01\x80\x3c\xfc" + bytes(40), DTS),
    ("amr", lambda: b"#!AMR\n\x3c" + bytes(31), AMR),
    ("amr-wb", lambda: b"#!AMR-WB\n\x2c" + bytes(32), AMR_WB),
    ("midi", lambda: b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk" + bytes(8), MIDI),
    ("caf", lambda: b"caff\x00\x01\x00\x00desc" + bytes(40), CAF),
    ("ape", ape, APE),
    ("ape-oldest", lambda: ape(3800), APE),
    ("ape-newest", lambda: ape(4999), APE),
    ("wavpack", wavpack, WAVPACK),
    ("wavpack-oldest", lambda: wavpack(0x402), WAVPACK),
    ("mp4-dash-segment", lambda: b"\x00\x00\x00\x18stypmsdh\x00\x00\x00\x00msdhmsix", MP4),
    ("mov-free-first", lambda: b"\x00\x00\x00\x08free\x00\x00\x10\x00mdat" + bytes(32), MOV),
    ("mov-skip-first", lambda: b"\x00\x00\x00\x08skip\x00\x00\x10\x00mdat" + bytes(32), MOV),
    ("mov-preview-first", lambda: b"\x00\x00\x00\x14pnot" + bytes(32), MOV),
    ("mov-moov-first", lambda: b"\x00\x00\x10\x00moov" + bytes(32), MOV),
    ("mov-mdat-first", lambda: b"\x00\x00\x10\x00mdat", MOV),
]
NEW_SAMPLE_PARAMS = [
    pytest.param(build, expected, id=name) for name, build, expected in NEW_SAMPLES
]


@pytest.mark.parametrize(("build", "expected"), NEW_SAMPLE_PARAMS)
def test_sniff_recognises_more_formats(build: Callable[[], bytes], expected: Expected) -> None:
    head = build()
    found = sniff(head)

    assert found is not None
    assert (found.mime, found.ext, found.kind, found.raster) == expected
    assert found.ext in KNOWN_EXTENSIONS
    assert looks_textual(head) is False
    assert judge_body("application/octet-stream", head) == Verdict(*expected[:2], expected[3], None)


@pytest.mark.parametrize("image_format", ["JPEG2000", "QOI"])
def test_more_raster_formats_are_readable_by_pillow(image_format: str) -> None:
    data = pillow_image(image_format)
    found = sniff(data)

    assert found is not None
    assert found.raster
    with Image.open(BytesIO(data)) as image:
        assert image.size == (3, 2)


# Bit depths the PNG specification allows for each colour type; every other pair is refused.
PNG_DEPTHS = {0: {1, 2, 4, 8, 16}, 2: {8, 16}, 3: {1, 2, 4, 8}, 4: {8, 16}, 6: {8, 16}}


@pytest.mark.parametrize("colour", range(8))
@pytest.mark.parametrize("depth", [0, 1, 2, 3, 4, 8, 16, 32])
def test_png_bit_depth_and_colour_type(colour: int, depth: int) -> None:
    valid = depth in PNG_DEPTHS.get(colour, set())
    assert (sniff(png_bytes(colour, depth)) is not None) is valid


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(png_bytes(width=0), id="zero-width"),
        pytest.param(png_bytes(height=0), id="zero-height"),
        pytest.param(png_bytes(tail=b"\x01\x00\x00"), id="compression-1"),
        pytest.param(png_bytes(tail=b"\x00\x01\x00"), id="filter-1"),
        pytest.param(png_bytes(tail=b"\x00\x00\x02"), id="interlace-2"),
        pytest.param(png_bytes(chunk=b"\x00\x00\x00\x0cIHDR"), id="length-12"),
        pytest.param(png_bytes(chunk=b"\x00\x00\x00\x0eIHDR"), id="length-14"),
        pytest.param(png_bytes(chunk=b"\x01\x00\x00\x0dIHDR"), id="length-high-byte"),
        pytest.param(png_bytes(chunk=b"\x00\x00\x00\x0dIDAT"), id="not-ihdr"),
        pytest.param(png_bytes(chunk=b"\x00\x00\x00\x0dihdr"), id="lower-case-ihdr"),
        pytest.param(png_bytes()[:29].replace(b"\x08\x02", b"\x08\x01"), id="bad-at-29-bytes"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + bytes(4096), id="signature-then-zeros"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + _random_bytes(3)[:200], id="signature-then-garbage"),
    ],
)
def test_png_with_a_bad_header_is_not_png(head: bytes) -> None:
    assert sniff(head) is None
    assert judge_body("image/png", head).reason == "unknown-format"


@pytest.mark.parametrize(
    ("width", "height"), [(1, 1), (0x7FFFFFFF, 1), (1, 0xFFFFFFFF), (256, 65536)]
)
def test_png_sizes(width: int, height: int) -> None:
    assert sniff(png_bytes(width=width, height=height)) is not None


@pytest.mark.parametrize("interlace", [0, 1])
def test_png_interlace(interlace: int) -> None:
    assert sniff(png_bytes(tail=bytes((0, 0, interlace)))) is not None


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(b"RF64\xff\xff\xff\xffAVI " + bytes(20), id="rf64-not-wave"),
        pytest.param(b"RIFX\x00\x00\x00\x00WAVE" + bytes(20), id="rifx"),
        pytest.param(b"FORM\x00\x00\x00\x20ILBM" + bytes(20), id="iff-picture"),
        pytest.param(b"FORM\x00\x00\x00\x20AIFX" + bytes(20), id="iff-unknown-form"),
        pytest.param(au()[:23], id="au-cut-short"),
        pytest.param(au(offset=23), id="au-offset-inside-header"),
        pytest.param(au(encoding=0), id="au-encoding-0"),
        pytest.param(au(encoding=28), id="au-encoding-28"),
        pytest.param(au(channels=0), id="au-no-channels"),
        pytest.param(b".snd files are Sun audio, this is text about them", id="au-text"),
        pytest.param(flv()[:8], id="flv-cut-short"),
        pytest.param(flv(flags=2), id="flv-reserved-flag"),
        pytest.param(flv(flags=8), id="flv-reserved-flag-3"),
        pytest.param(flv(flags=0x80), id="flv-reserved-flag-7"),
        pytest.param(flv(header_size=8), id="flv-header-8"),
        pytest.param(flv(header_size=10), id="flv-header-10"),
        pytest.param(b"FLV\x02\x05\x00\x00\x00\x09", id="flv-version-2"),
        pytest.param(ASF_HEADER[:15] + bytes(40), id="asf-guid-cut"),
        pytest.param(ts_packets(4), id="ts-four-packets"),
        pytest.param(ts_packets(5)[:-188] + b"\x48" + ts_packets(1)[1:], id="ts-lost-sync"),
        pytest.param(ts_packets(6)[:-1] + b"\x00\x48", id="ts-last-sync-lost"),
        pytest.param(ts_packets(6, 192, 4)[:-188] + b"\x00" * 188, id="m2ts-lost-sync"),
        pytest.param(b"GET / HTTP/1.1\r\n" * 100, id="ts-like-text"),
        pytest.param(MPEG2_PACK[:7], id="ps-cut-short"),
        pytest.param(b"\x00\x00\x01\xba\x04" + bytes(20), id="ps-bad-markers"),
        pytest.param(b"\x00\x00\x01\xba\x40" + bytes(20), id="ps-mpeg2-marker-missing"),
        pytest.param(b"\x00\x00\x01\xba\x20" + bytes(20), id="ps-mpeg1-marker-missing"),
        pytest.param(b"\x00\x00\x01\xba\x31" + bytes(20), id="ps-mpeg1-bad-prefix"),
        pytest.param(b"\x00\x00\x01\xb3\x00\x00\xf0\x14" + bytes(8), id="es-zero-width"),
        pytest.param(b"\x00\x00\x01\xb3\x16\x00\x00\x14" + bytes(8), id="es-zero-height"),
        pytest.param(b"\x00\x00\x01\xb3\x16\x00\xf0\x04" + bytes(8), id="es-aspect-0"),
        pytest.param(b"\x00\x00\x01\xb3\x16\x00\xf0\xf4" + bytes(8), id="es-aspect-15"),
        pytest.param(b"\x00\x00\x01\xb3\x16\x00\xf0\x10" + bytes(8), id="es-frame-rate-0"),
        pytest.param(b"\x00\x00\x01\xb3\x16\x00\xf0\x19" + bytes(8), id="es-frame-rate-9"),
        pytest.param(b"\x00\x00\x01\xb5\x16\x00\xf0\x14" + bytes(8), id="es-extension-code"),
        pytest.param(b"\x00\x00\x02\xba\x44" + bytes(20), id="not-a-start-code"),
        pytest.param(ac3_frame()[:5], id="ac3-cut-short"),
        pytest.param(ac3_frame(rate_code=3), id="ac3-reserved-rate"),
        pytest.param(b"\x0b\x77\x12\x34\x26\x40" + bytes(3000), id="ac3-size-code-38"),
        pytest.param(ac3_frame(bsid=9), id="ac3-bsid-9"),
        pytest.param(ac3_frame(bsid=16), id="ac3-eac3"),
        pytest.param(ac3_frame() + b"\x0b\x78" + bytes(8), id="ac3-second-frame-missing"),
        pytest.param(ac3_frame() + ac3_frame(bsid=9), id="ac3-second-frame-bad"),
        pytest.param(b"\x0b\x77 is a sync word", id="ac3-text"),
        pytest.param(b"#!AMR-NB\n" + bytes(20), id="amr-unknown-variant"),
        pytest.param(b"MThd\x00\x00\x00\x07" + bytes(20), id="midi-header-7"),
        pytest.param(b"caff\x00\x02\x00\x00" + bytes(20), id="caf-version-2"),
        pytest.param(ape(3799), id="ape-too-old"),
        pytest.param(ape(5000), id="ape-too-new"),
        pytest.param(b"MAC address 00:11:22", id="ape-text"),
        pytest.param(wavpack(0x401), id="wavpack-too-old"),
        pytest.param(wavpack(0x411), id="wavpack-too-new"),
        pytest.param(qoi()[:13], id="qoi-cut-short"),
        pytest.param(qoi(width=0), id="qoi-zero-width"),
        pytest.param(qoi(height=0), id="qoi-zero-height"),
        pytest.param(qoi(channels=2), id="qoi-2-channels"),
        pytest.param(qoi(channels=5), id="qoi-5-channels"),
        pytest.param(qoi(colorspace=2), id="qoi-colorspace-2"),
        pytest.param(b"\x00\x00\x00\x0cJXL \r\n\x87\x0b", id="jxl-container-bad"),
        pytest.param(b"\x00\x00\x00\x0cjP  \r\n\x87\x0b", id="jp2-container-bad"),
        pytest.param(b"\x00\x00\x00\x08mdaX" + bytes(8), id="mov-unknown-atom"),
        pytest.param(b"\x01\x00\x00\x08moov" + bytes(8), id="mov-atom-too-big"),
        pytest.param(b"\x00\x00\x00mdat"[:7], id="mov-cut-short"),
    ],
)
def test_sniff_rejects_near_misses(head: bytes) -> None:
    assert sniff(head) is None


def test_mov_exactly_eight_bytes() -> None:
    assert sniff(b"\x00\x00\x00\x08moov") == MediaFormat("video/quicktime", ".mov", "video", False)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param(au()[:24], AU, id="au-exactly-24"),
        pytest.param(flv()[:9], FLV, id="flv-exactly-9"),
        pytest.param(qoi()[:14], QOI, id="qoi-exactly-14"),
        pytest.param(MPEG2_PACK[:8], MPEG_VIDEO, id="ps-exactly-8"),
        pytest.param(MPEG_SEQUENCE[:8], MPEG_VIDEO, id="es-exactly-8"),
        pytest.param(ac3_frame()[:6], AC3, id="ac3-exactly-6"),
        pytest.param(ac3_frame() + ac3_frame()[:5], AC3, id="ac3-second-header-cut"),
        pytest.param(ac3_frame() + ac3_frame()[:6], AC3, id="ac3-second-header-in-view"),
        pytest.param(ape()[:6], APE, id="ape-exactly-6"),
        pytest.param(wavpack()[:10], WAVPACK, id="wavpack-exactly-10"),
        pytest.param(ts_packets(4) + b"\x47\x40\x00\x10", TS, id="ts-fifth-packet-starts"),
        pytest.param(ts_packets(4) + b"\x47", TS, id="ts-fifth-sync-only"),
        pytest.param(b"\x00\x00\x01\xb3\x00\x10\x01\x11", MPEG_VIDEO, id="es-1x1-aspect-1-rate-1"),
        pytest.param(b"\x00\x00\x01\xb3\xff\xff\xff\xe8", MPEG_VIDEO, id="es-max-aspect-14-rate-8"),
    ],
)
def test_sniff_edges_of_new_formats(head: bytes, expected: Expected) -> None:
    found = sniff(head)
    assert found is not None
    assert (found.mime, found.ext, found.kind, found.raster) == expected


# --- known formats that are not media (contract §4.5) ---------------------------------------------


def tar_archive() -> bytes:
    buffer = BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        info = tarfile.TarInfo("photo.png")
        info.size = 3
        archive.addfile(info, BytesIO(b"abc"))
    return buffer.getvalue()


def zip_archive(name: str = "word/document.xml") -> bytes:
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, "<w:document/>")
    return buffer.getvalue()


def empty_zip() -> bytes:
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w"):
        pass
    return buffer.getvalue()


def sqlite_database() -> bytes:
    connection = sqlite3.connect(":memory:")
    try:
        connection.execute("create table t (x)")
        return connection.serialize()
    finally:
        connection.close()


def pe_program(pointer: int = 0x80) -> bytes:
    dos = bytearray(b"MZ" + bytes(pointer - 2))
    dos[0x3C:0x40] = pointer.to_bytes(4, "little")
    return bytes(dos) + b"PE\x00\x00\x4c\x01" + bytes(40)


def sfnt(
    version: bytes = b"\x00\x01\x00\x00", tables: int = 12, fields: tuple[int, ...] = ()
) -> bytes:
    log2 = tables.bit_length() - 1
    search_range, selector, shift = fields or (16 << log2, log2, 16 * tables - (16 << log2))
    numbers = (tables, search_range, selector, shift)
    return version + b"".join(n.to_bytes(2, "big") for n in numbers) + bytes(16 * tables)


NON_MEDIA: list[tuple[str, Callable[[], bytes], str]] = [
    ("pdf", lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "pdf"),
    ("postscript", lambda: b"%!PS-Adobe-3.0\n%%Pages: 1\n", "postscript"),
    ("eps-binary-header", lambda: b"\xc5\xd0\xd3\xc6\x20\x00\x00\x00" + bytes(24), "postscript"),
    ("rtf", lambda: b"{\\rtf1\\ansi\\deff0 hello}", "rtf"),
    ("ole2-doc", lambda: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504), "ole2"),
    ("zip-docx", zip_archive, "zip"),
    ("zip-odt", lambda: zip_archive("mimetype"), "zip"),
    ("zip-empty", empty_zip, "zip"),
    ("zip-spanned", lambda: b"PK\x07\x08" + zip_archive(), "zip"),
    ("gzip", lambda: gzip.compress(b"hello " * 100), "gzip"),
    ("bzip2", lambda: bz2.compress(b"hello " * 100), "bzip2"),
    *(
        (f"bzip2-level-{level}", lambda level=level: bz2.compress(b"x", level), "bzip2")
        for level in range(1, 10)
    ),
    ("xz", lambda: lzma.compress(b"hello " * 100), "xz"),
    ("zstd", lambda: b"\x28\xb5\x2f\xfd\x24\x05\x29\x00\x00hello", "zstd"),
    ("lz4", lambda: b"\x04\x22\x4d\x18\x64\x40\xa7\x05\x00\x00\x80hello", "lz4"),
    ("7z", lambda: b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(24), "7z"),
    ("rar4", lambda: b"Rar!\x1a\x07\x00\xcf\x90\x73\x00\x00\x0d", "rar"),
    ("rar5", lambda: b"Rar!\x1a\x07\x01\x00\x33\x92\xb5\xe5", "rar"),
    ("cab", lambda: b"MSCF\x00\x00\x00\x00\x40\x00\x00\x00", "cab"),
    (
        "deb",
        lambda: b"!<arch>\ndebian-binary   1342943816  0     0     100644  4         `\n",
        "ar",
    ),
    ("rpm", lambda: b"\xed\xab\xee\xdb\x03\x00\x00\x00\x00\x01" + bytes(60), "rpm"),
    ("tar", tar_archive, "tar"),
    ("elf", lambda: b"\x7fELF\x02\x01\x01\x00" + bytes(56), "elf"),
    ("mach-o-32", lambda: b"\xfe\xed\xfa\xce\x00\x00\x00\x07" + bytes(20), "mach-o"),
    ("mach-o-64", lambda: b"\xfe\xed\xfa\xcf\x01\x00\x00\x07" + bytes(24), "mach-o"),
    ("mach-o-32-le", lambda: b"\xce\xfa\xed\xfe\x07\x00\x00\x00" + bytes(20), "mach-o"),
    ("mach-o-64-le", lambda: b"\xcf\xfa\xed\xfe\x07\x00\x00\x01" + bytes(24), "mach-o"),
    ("java-class", lambda: b"\xca\xfe\xba\xbe\x00\x00\x00\x34\x00\x1d", "java-class"),
    ("dex", lambda: b"dex\n035\x00" + bytes(32), "dex"),
    ("wasm", lambda: b"\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00", "wasm"),
    ("woff", lambda: b"wOFF\x00\x01\x00\x00" + bytes(36), "woff"),
    ("woff2", lambda: b"wOF2OTTO" + bytes(40), "woff2"),
    ("ttc", lambda: b"ttcf\x00\x01\x00\x00\x00\x00\x00\x02" + bytes(8), "font"),
    ("ttf", sfnt, "font"),
    ("otf", lambda: sfnt(b"OTTO", 10), "font"),
    ("apple-truetype", lambda: sfnt(b"true", 9), "font"),
    ("type1-sfnt", lambda: sfnt(b"typ1", 3), "font"),
    ("ttf-one-table", lambda: sfnt(tables=1), "font"),
    ("ttf-16-tables", lambda: sfnt(tables=16), "font"),
    ("ttf-17-tables", lambda: sfnt(tables=17), "font"),
    ("sqlite", sqlite_database, "sqlite"),
    ("pe", pe_program, "pe"),
    ("pe-header-at-64", lambda: pe_program(0x40), "pe"),
    ("pe-header-far", lambda: pe_program(0xF00), "pe"),
]
NON_MEDIA_PARAMS = [pytest.param(build, name, id=case) for case, build, name in NON_MEDIA]


@pytest.mark.parametrize(("build", "name"), NON_MEDIA_PARAMS)
def test_non_media_formats_are_named(build: Callable[[], bytes], name: str) -> None:
    head = build()
    assert sniff(head) is None
    assert non_media(head) == name
    assert non_media(head + bytes(SNIFF_BYTES)) == name


@pytest.mark.parametrize(
    "declared",
    [
        "audio/mpeg", "audio/x-unknown", "video/mp4", "video/x-unknown", "image/png",
        "application/octet-stream", "application/pdf", None,
    ],
)  # fmt: skip
@pytest.mark.parametrize(("build", "name"), NON_MEDIA_PARAMS)
def test_non_media_is_a_mismatch_whatever_the_declared_type(
    build: Callable[[], bytes], name: str, declared: str | None
) -> None:
    verdict = judge_body(declared, build(), "https://x.test/song.mp3")
    assert verdict == Verdict(essence(declared), "", False, "content-mismatch")


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"%PDF", id="pdf-cut"),
        pytest.param(b"PK\x03\x05", id="zip-bad-kind"),
        pytest.param(b"\x1f\x8b\x07", id="gzip-not-deflate"),
        pytest.param(b"BZh0" + bytes(8), id="bzip2-level-0"),
        pytest.param(b"BZhx" + bytes(8), id="bzip2-level-x"),
        pytest.param(b"Rar!\x1a\x08", id="rar-bad"),
        pytest.param(b"MSCF\x00\x00\x00\x01", id="cab-bad-reserved"),
        pytest.param(tar_archive()[:261], id="tar-cut-in-magic"),
        pytest.param(b"ustar" + bytes(300), id="tar-magic-at-0"),
        pytest.param(bytes(256) + b"ustar" + bytes(10), id="tar-magic-at-256"),
        pytest.param(b"MZ" + bytes(100), id="mz-without-pe"),
        pytest.param(b"MZ is a prefix of words too", id="mz-text"),
        pytest.param(pe_program()[: 0x80 + 3], id="pe-header-cut"),
        pytest.param(pe_program()[:0x3F], id="pe-pointer-cut"),
        pytest.param(pe_program(0x2000), id="pe-header-beyond-sniff-bytes"),
        pytest.param(sfnt()[:11], id="sfnt-cut"),
        pytest.param(sfnt(tables=0, fields=(0, 0, 0)), id="sfnt-no-tables"),
        pytest.param(sfnt(tables=12, fields=(192, 3, 0)), id="sfnt-bad-search-range"),
        pytest.param(sfnt(tables=12, fields=(128, 2, 64)), id="sfnt-bad-selector"),
        pytest.param(sfnt(tables=12, fields=(128, 3, 65)), id="sfnt-bad-range-shift"),
        pytest.param(sfnt(b"\x00\x02\x00\x00"), id="sfnt-bad-version"),
        pytest.param(b"true story, as told", id="true-text"),
        pytest.param(b"SQLite format 3 without nul", id="sqlite-text"),
        pytest.param(UNKNOWN_BINARY, id="unknown-binary"),
        pytest.param(pillow_image("PNG"), id="png"),
        *(pytest.param(_random_bytes(seed), id=f"random-{seed}") for seed in range(4)),
    ],
)
def test_non_media_rejects(head: bytes) -> None:
    assert non_media(head) is None


def test_non_media_looks_only_at_sniff_bytes() -> None:
    assert non_media(bytes(4000) + b"\x00" * 96 + b"PE") is None
    assert non_media(pe_program(SNIFF_BYTES - 4)) == "pe"
    assert non_media(pe_program(SNIFF_BYTES - 3)) is None


# --- the body rule: which declared types are checked -------------------------------------------

VERIFIABLE_TYPES = [
    kind for kind in MIME_EXTENSIONS if kind.startswith(("image/", "audio/", "video/"))
] + [
    "audio/aiff", "audio/basic", "audio/ac3", "audio/vnd.dts", "audio/x-ms-wma", "video/mp2t",
    "video/x-ms-asf", "image/jxl", "image/qoi", "image/jp2", "audio/x-matroska",
]  # fmt: skip
UNVERIFIABLE_TYPES = {
    "audio/x-pn-realaudio": ".ra",  # from the standard library's table
    "video/x-sgi-movie": "",
    "audio/x-unknown": "",
    "video/x-unknown": "",
    "audio/": "",
}


@pytest.mark.parametrize("declared", sorted(set(VERIFIABLE_TYPES)))
def test_checkable_types_with_unknown_bytes_are_unknown_format(declared: str) -> None:
    assert can_verify(declared)
    assert can_verify(declared.upper() + "; x=1")
    verdict = judge_body(declared, UNKNOWN_BINARY, "https://x.test/a.mp3")
    assert verdict == Verdict(declared, "", False, "unknown-format")


@pytest.mark.parametrize(("declared", "ext"), sorted(UNVERIFIABLE_TYPES.items()))
def test_uncheckable_audio_video_is_kept_and_named_from_the_type(declared: str, ext: str) -> None:
    assert not can_verify(declared)
    assert judge_body(declared, UNKNOWN_BINARY) == Verdict(declared, ext, False, None)
    url_ext = ext or ".flac"
    expected = Verdict(declared, url_ext, False, None)
    assert judge_body(declared, UNKNOWN_BINARY, "https://x.test/a.FLAC") == expected


@pytest.mark.parametrize(
    "declared",
    ["image/x-portable-pixmap", "image/x-unknown", "application/x-unknown", "text/plain", "", None],
)
def test_other_unknown_types_are_unknown_format(declared: str | None) -> None:
    assert not can_verify(declared)
    verdict = judge_body(declared, UNKNOWN_BINARY, "https://x.test/a.mp3")
    assert verdict == Verdict(essence(declared), "", False, "unknown-format")


@pytest.mark.parametrize(
    ("declared", "head", "expected"),
    [
        # Sniffed bytes win over any declaration.
        ("audio/x-unknown", MP3_FRAME * 2, Verdict("audio/mpeg", ".mp3", False, None)),
        ("audio/mpeg", pillow_image("PNG"), Verdict("image/png", ".png", True, None)),
        ("application/pdf", wav_file(), Verdict("audio/wav", ".wav", False, None)),
        # Text is a mismatch even under a type the sniffer cannot check.
        (
            "audio/x-unknown",
            b"Not Found",
            Verdict("audio/x-unknown", "", False, "content-mismatch"),
        ),
        ("video/x-unknown", b"", Verdict("video/x-unknown", "", False, "empty")),
    ],
)
def test_judge_body_order(declared: str, head: bytes, expected: Verdict) -> None:
    assert judge_body(declared, head) == expected


def test_every_format_counts_for_declared_types() -> None:
    from mediapipe import sniff as module

    defined = {value for value in vars(module).values() if isinstance(value, MediaFormat)}
    assert set(module._FORMATS) == defined
    assert len(defined) == 48


# --- tables of the older detectors, entry by entry ---------------------------------------------


def bmp(dib_size: int) -> bytes:
    return (
        b"BM"
        + (70).to_bytes(4, "little")
        + bytes(4)
        + (54).to_bytes(4, "little")
        + dib_size.to_bytes(4, "little")
    )


@pytest.mark.parametrize("dib_size", [12, 16, 40, 52, 56, 64, 108, 124])
def test_bmp_dib_header_sizes(dib_size: int) -> None:
    assert sniff(bmp(dib_size)) == MediaFormat("image/bmp", ".bmp", "image", True)
    assert sniff(bmp(dib_size)[:17]) is None


@pytest.mark.parametrize(
    "dib_size", [0, 11, 13, 15, 17, 39, 41, 51, 53, 55, 57, 63, 65, 107, 109, 123, 125, 1 << 16]
)
def test_bmp_other_header_sizes(dib_size: int) -> None:
    assert sniff(bmp(dib_size)) is None


def ico(count: int, reserved: int = 0) -> bytes:
    entry = (
        bytes((16, 16, 0, reserved))
        + b"\x01\x00\x20\x00"
        + (40).to_bytes(4, "little")
        + (22).to_bytes(4, "little")
    )
    return b"\x00\x00\x01\x00" + count.to_bytes(2, "little") + entry


ICO_FORMAT = MediaFormat("image/x-icon", ".ico", "image", True)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param(ico(1), ICO_FORMAT, id="one-image"),
        pytest.param(ico(2), ICO_FORMAT, id="two-images"),
        pytest.param(ico(256), ICO_FORMAT, id="count-high-byte"),
        pytest.param(ico(0), None, id="no-images"),
        pytest.param(ico(1, reserved=1), None, id="reserved-byte-set"),
        pytest.param(ico(1)[:6], ICO_FORMAT, id="exactly-6-bytes"),
        pytest.param(ico(1)[:5], None, id="5-bytes"),
        pytest.param(ico(1, reserved=1)[:9], ICO_FORMAT, id="reserved-byte-out-of-view"),
        pytest.param(ico(1, reserved=1)[:10], None, id="reserved-byte-in-view"),
        pytest.param(b"\x00\x00\x02\x00\x01\x00" + bytes(16), None, id="cursor"),
    ],
)
def test_ico(head: bytes, expected: MediaFormat | None) -> None:
    assert sniff(head) == expected


BRANDS = {
    b"avif": AVIF, b"avis": AVIF,
    b"heic": HEIC, b"heix": HEIC, b"heim": HEIC, b"heis": HEIC,
    b"hevc": HEIC, b"hevx": HEIC, b"hevm": HEIC, b"hevs": HEIC,
    b"M4A ": M4A, b"M4B ": M4A, b"M4P ": M4A, b"F4A ": M4A,
    b"M4V ": M4V, b"M4VH": M4V, b"M4VP": M4V,
    b"qt  ": MOV,
    b"isom": MP4, b"iso2": MP4, b"iso3": MP4, b"iso4": MP4, b"iso5": MP4, b"iso6": MP4,
    b"iso7": MP4, b"iso8": MP4, b"iso9": MP4, b"mp41": MP4, b"mp42": MP4, b"mp71": MP4,
    b"avc1": MP4, b"dash": MP4, b"msdh": MP4, b"msix": MP4, b"msnv": MP4, b"mmp4": MP4,
    b"f4v ": MP4, b"XAVC": MP4,
    b"3gp4": THREE_GP, b"3gp6": THREE_GP, b"3ge6": THREE_GP, b"3gg6": THREE_GP, b"3gs7": THREE_GP,
    b"3g2a": THREE_G2, b"3g2c": THREE_G2,
}  # fmt: skip


def _as_tuple(found: MediaFormat | None) -> Expected | None:
    return None if found is None else (found.mime, found.ext, found.kind, found.raster)


@pytest.mark.parametrize(("brand", "expected"), sorted(BRANDS.items()))
def test_every_ftyp_brand(brand: bytes, expected: Expected) -> None:
    assert _as_tuple(sniff(ftyp(brand))) == expected  # as the major brand
    assert _as_tuple(sniff(ftyp(b"zzzz", b"yyyy", brand))) == expected  # as a compatible one
    assert _as_tuple(sniff(ftyp(b"mif1", brand))) == expected  # behind a generic image brand


@pytest.mark.parametrize("brand", [b"mif1", b"msf1", b"mif2", b"miaf"])
def test_generic_image_brands(brand: bytes) -> None:
    assert _as_tuple(sniff(ftyp(brand))) == HEIF
    assert _as_tuple(sniff(ftyp(b"zzzz", brand))) == HEIF
    assert _as_tuple(sniff(ftyp(brand, b"heic"))) == HEIC
    assert _as_tuple(sniff(ftyp(b"isom", brand))) == MP4  # a known major brand wins


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param(ftyp(b"isom")[:16], MP4, id="exactly-16"),
        pytest.param(ftyp(b"isom")[:15], None, id="15-bytes"),
        pytest.param(b"\x00\x00\x00\x10ftypzzzz\x00\x00\x00\x00isom", None, id="brand-after-box"),
        pytest.param(b"\x00\x00\x00\x14ftypzzzz\x00\x00\x00\x00isom", MP4, id="last-brand-in-box"),
        pytest.param(b"\x00\x00\x00\x14ftypzzzz\x00\x00\x00\x00iso", None, id="last-brand-cut"),
        pytest.param(b"\x00\x00\x00\x0cftypisom\x00\x00\x00\x00", None, id="box-12"),
        pytest.param(b"\x00\x00\x00\x12ftypisom\x00\x00\x00\x00" + bytes(8), None, id="box-18"),
        pytest.param(b"\x00\x00\x00\x18ftyp3gr6\x00\x00\x00\x00" + bytes(8), None, id="3gr-brand"),
        pytest.param(b"\x00\x00\x00\x18ftyp3g3a\x00\x00\x00\x00" + bytes(8), None, id="3g3-brand"),
        pytest.param(b"\x00\x00\x00\x18ftyqisom\x00\x00\x00\x00" + bytes(8), None, id="not-ftyp"),
    ],
)
def test_ftyp_edges(head: bytes, expected: Expected | None) -> None:
    assert _as_tuple(sniff(head)) == expected


# MPEG audio Layer III: bit rates (kbit/s) by index and sample rates (Hz) by index, per version.
MPEG1_KBPS = [32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320]
MPEG2_KBPS = [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160]
SAMPLE_RATES = {3: [44100, 48000, 32000], 2: [22050, 24000, 16000], 0: [11025, 12000, 8000]}


def mpeg_header(version: int, bitrate: int, rate: int, padding: int = 0) -> bytes:
    return bytes(
        (0xFF, 0xE0 | version << 3 | 0x02 | 0x01, bitrate << 4 | rate << 2 | padding << 1, 0x64)
    )


MPEG_CASES = [
    pytest.param(version, bitrate, rate, padding, id=f"v{version}-b{bitrate}-r{rate}-p{padding}")
    for version in (3, 2, 0)
    for bitrate in range(1, 15)
    for rate in range(3)
    for padding in (0, 1)
]


@pytest.mark.parametrize(("version", "bitrate", "rate", "padding"), MPEG_CASES)
def test_mpeg_audio_frame_lengths(version: int, bitrate: int, rate: int, padding: int) -> None:
    kbps = (MPEG1_KBPS if version == 3 else MPEG2_KBPS)[bitrate - 1]
    per_byte = 144 if version == 3 else 72
    length = per_byte * kbps * 1000 // SAMPLE_RATES[version][rate] + padding
    header = mpeg_header(version, bitrate, rate, padding)
    frame = header + bytes(length - 4)

    assert _as_tuple(sniff(frame + header)) == MP3
    assert sniff(frame + b"\x12\x34\x56\x78") is None
    assert sniff(frame + b"\x00" + header) is None
    assert _as_tuple(sniff(frame + header[:3])) == MP3  # the next header is cut: one frame will do


@pytest.mark.parametrize("version", [3, 2, 0])
@pytest.mark.parametrize("bitrate", [0, 15])
def test_mpeg_audio_free_and_bad_bit_rates(version: int, bitrate: int) -> None:
    assert sniff(mpeg_header(version, bitrate, 0) + bytes(500)) is None


def test_mpeg_audio_header_edges() -> None:
    header = mpeg_header(3, 9, 0)
    assert _as_tuple(sniff(header)) == MP3
    assert sniff(header[:3]) is None
    assert sniff(bytes((0xFF, 0xDB)) + header[2:]) is None  # 11th sync bit missing
    assert sniff(header[:3] + b"\x65") is not None  # emphasis 01
    assert sniff(header[:3] + b"\x67") is not None  # emphasis 11
    assert sniff(header[:3] + b"\x66") is None  # emphasis 10 is reserved


@pytest.mark.parametrize("length", [7, 8, 9, 64, 255, 256, 2047, 2048, 2049, 3000, 4089])
def test_adts_frame_lengths(length: int) -> None:
    frame = adts_frame(length)
    assert _as_tuple(sniff(frame + frame[:7])) == AAC
    assert sniff(frame + b"\x12" * 7) is None
    assert sniff(frame[:-1] + frame[:7] + b"\x00") is None
    assert _as_tuple(sniff(frame + frame[:6])) == AAC  # the next header is cut


@pytest.mark.parametrize("length", [4096, 8191])
def test_adts_long_frames(length: int) -> None:
    assert _as_tuple(sniff(adts_frame(length))) == AAC


def test_adts_header_fields() -> None:
    frame = adts_frame()
    mpeg2 = frame[:1] + b"\xf9" + frame[2:]
    assert _as_tuple(sniff(mpeg2 * 2)) == AAC
    with_crc = frame[:1] + b"\xf0" + frame[2:]
    assert _as_tuple(sniff(with_crc * 2)) == AAC
    for index in range(13):
        head = frame[:2] + bytes((frame[2] & 0xC3 | index << 2,)) + frame[3:]
        assert _as_tuple(sniff(head * 2)) == AAC, index
    for index in (13, 14, 15):
        head = frame[:2] + bytes((frame[2] & 0xC3 | index << 2,)) + frame[3:]
        assert sniff(head * 2) is None, index
    assert sniff(adts_frame(7)[:6]) is None
    assert _as_tuple(sniff(adts_frame(7)[:7])) == AAC
    six = bytes((0xFF, 0xF1, 0x50, 0x80, 0x00, 6 << 5 | 0x1F, 0xFC))
    assert sniff(six + bytes(20)) is None


def id3(version: int, body: bytes, flags: int = 0, revision: int = 0) -> bytes:
    size = len(body)
    syncsafe = bytes((size >> shift) & 0x7F for shift in (21, 14, 7, 0))
    return b"ID3" + bytes((version, revision, flags)) + syncsafe + body


@pytest.mark.parametrize("version", [2, 3, 4])
@pytest.mark.parametrize("size", [0, 1, 127, 128, 129, 1000, 4000])
def test_id3_versions_and_sizes(version: int, size: int) -> None:
    assert _as_tuple(sniff(id3(version, bytes(size)) + MP3_FRAME)) == MP3
    assert _as_tuple(sniff(id3(version, bytes(size)) + b"fLaC" + bytes(40))) == FLAC
    assert _as_tuple(sniff(id3(version, bytes(size)) + adts_frame() * 2)) == AAC
    assert _as_tuple(sniff(id3(version, bytes(size + 1))[: 10 + size] + b"fLaC")) == MP3


def test_id3_v23_tag_as_written_by_common_taggers() -> None:
    frame = b"TIT2" + (6).to_bytes(4, "big") + b"\x00\x00" + b"\x00Song\x00"
    assert _as_tuple(sniff(id3(3, frame) + MP3_FRAME)) == MP3


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param(id3(1, b""), None, id="version-1"),
        pytest.param(id3(5, b""), None, id="version-5"),
        pytest.param(id3(3, b"", revision=0xFF), None, id="revision-ff"),
        pytest.param(id3(3, b"", revision=0xFE), MP3, id="revision-fe"),
        pytest.param(id3(4, b"")[:9], None, id="9-bytes"),
        pytest.param(id3(4, b"")[:10], MP3, id="exactly-10"),
        pytest.param(
            id3(4, bytes(10), flags=0x10) + b"3DI" + bytes(7) + b"fLaC", FLAC, id="footer"
        ),
        pytest.param(id3(4, bytes(10), flags=0x10) + b"fLaC", MP3, id="footer-skipped"),
        pytest.param(id3(4, bytes(10), flags=0x20) + b"fLaC", FLAC, id="other-flag"),
        *(
            pytest.param(
                b"ID3\x04\x00\x00" + bytes(i) + b"\x80" + bytes(3 - i), None, id=f"size-bit-{i}"
            )
            for i in range(4)
        ),
        pytest.param(b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f", MP3, id="largest-size"),
    ],
)
def test_id3_header(head: bytes, expected: Expected | None) -> None:
    assert _as_tuple(sniff(head)) == expected


# --- text and markup edges -----------------------------------------------------------------------

CONTROLS = b"\x01\x02\x03\x04" * 10


@pytest.mark.parametrize("prefix", [b"<!--", b"<?xml", b"<!doctype html", b"<!DOCTYPE HTML"])
def test_markup_prefixes_are_text_whatever_follows(prefix: bytes) -> None:
    assert looks_textual(prefix + CONTROLS) is True
    assert looks_textual(b"\xef\xbb\xbf \t\r\n" + prefix + CONTROLS) is True


HTML_TAGS = (
    "html head body script style title meta link div span p a br h1 table iframe form center pre"
    " noscript"
)


@pytest.mark.parametrize("tag", HTML_TAGS.split())
@pytest.mark.parametrize("end", list(" \t\r\n>/"))
def test_html_tags_are_text_whatever_follows(tag: str, end: str) -> None:
    assert looks_textual(f"<{tag}{end}".encode() + CONTROLS) is True
    assert looks_textual(f"<{tag.upper()}{end}".encode() + CONTROLS) is True


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(b"<pz" + CONTROLS, id="longer-name"),
        pytest.param(b"<" + CONTROLS, id="bare-angle"),
        pytest.param(b"<!-" + CONTROLS, id="short-comment"),
        pytest.param(b"<?xm" + CONTROLS, id="short-xml"),
        pytest.param(b" " * 30 + b"<div>" + CONTROLS, id="tag-beyond-32-bytes-kept"),
    ],
)
def test_markup_near_misses_with_controls(head: bytes) -> None:
    expected = head.startswith(b" " * 30)
    assert looks_textual(head) is expected


@pytest.mark.parametrize("head", [b"<p", b"<a", b"<br", b"<html", b"<"])
def test_a_bare_tag_name_at_the_end_is_plain_text(head: bytes) -> None:
    assert looks_textual(head) is True


@pytest.mark.parametrize("allowed", list("\t\n\r\f\v\x1b"))
def test_allowed_controls(allowed: str) -> None:
    assert looks_textual(("ab" + allowed).encode() * 20) is True


@pytest.mark.parametrize(("controls", "expected"), [(5, True), (6, False)])
def test_control_share(controls: int, expected: bool) -> None:
    text = b"\x01" * controls + b"a" * (100 - controls)
    assert looks_textual(text) is expected


@pytest.mark.parametrize(("ascii_count", "expected"), [(90, True), (89, False)])
def test_ascii_share_of_legacy_text(ascii_count: int, expected: bool) -> None:
    head = b"\xe9" * (100 - ascii_count) + b"a" * ascii_count
    assert looks_textual(head) is expected


@pytest.mark.parametrize("ascii_byte", [b"\t", b"\n", b"\r", b" ", b"~"])
def test_ascii_bytes_that_count_as_text(ascii_byte: bytes) -> None:
    assert looks_textual(b"\xe9" * 10 + ascii_byte * 90) is True


@pytest.mark.parametrize("byte", [b"\x7f", b"\x1f", b"\x0b"])
def test_ascii_bytes_that_do_not_count(byte: bytes) -> None:
    assert looks_textual(b"\xe9" * 10 + byte * 90) is False


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param(b'{"a": "' + CONTROLS + b'"}', True, id="json-object-with-controls"),
        pytest.param(b" \n[" + CONTROLS, True, id="json-array-with-controls"),
        pytest.param(b"\xef\xbb\xbf{" + CONTROLS, True, id="bom-json"),
        pytest.param("{".encode("utf-16-le") + CONTROLS, False, id="utf16-without-bom"),
        pytest.param(b"\xff\xfe" + "text".encode("utf-16-le"), True, id="utf16-le"),
        pytest.param(b"\xfe\xff" + "text".encode("utf-16-be"), True, id="utf16-be"),
        pytest.param(b"\xff\xfe" + "a\x00b".encode("utf-16-le"), False, id="utf16-nul"),
        pytest.param(b"\xef\xbb\xbf", False, id="bom-only"),
        pytest.param(b"\x00", False, id="nul"),
        pytest.param(b"\xe9", False, id="one-latin-1-byte"),
        pytest.param(b"a", True, id="one-letter"),
    ],
)
def test_looks_textual_edges(head: bytes, expected: bool) -> None:
    assert looks_textual(head) is expected


def test_looks_textual_reads_only_sniff_bytes() -> None:
    assert looks_textual(b"a" * SNIFF_BYTES + b"\x00") is True
    assert looks_textual(b"a" * (SNIFF_BYTES - 1) + b"\x00") is False


@pytest.mark.parametrize("after", list(" \t\r\n/>"))
def test_svg_element_ends(after: str) -> None:
    assert sniff(f"<svg{after}".encode()) == MediaFormat("image/svg+xml", ".svg", "image", False)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param(b'<?xml version="1.0"?><svg>', True, id="declaration-adjacent"),
        pytest.param(b"<!--c--><svg>", True, id="comment-adjacent"),
        pytest.param(b"<!-- a -- b --><svg>", True, id="comment-with-dashes"),
        pytest.param(b"<!DOCTYPE svg><svg>", True, id="doctype-adjacent"),
        pytest.param(b"<!doctype svg><svg>", True, id="doctype-lower-case"),
        pytest.param(b'<!DOCTYPE svg [<!ENTITY e "x">]><svg>', True, id="subset-adjacent"),
        pytest.param(b"<!DOCTYPE svg [<!ENTITY e '>'>]><svg>", True, id="subset-with-angle"),
        pytest.param(b"<!DOCTYPE svg><!-- [ -->\r\n\t <svg>", True, id="bracket-after-doctype"),
        pytest.param(b"<?xml", False, id="declaration-cut"),
        pytest.param(b"<!-- cut", False, id="comment-cut"),
        pytest.param(b"<!DOCTYPE svg", False, id="doctype-cut"),
        pytest.param(b"<!DOCTYPE svg [ <!ENTITY e 'x'>", False, id="subset-cut"),
        pytest.param(b"<!DOCTYPE svg [ ]", False, id="subset-closed-doctype-cut"),
        pytest.param(b"<svg", False, id="element-cut"),
        pytest.param(b"<svgz>", False, id="other-element"),
        pytest.param(b"x<svg>", False, id="text-before"),
        pytest.param(b"<?x?>x<svg>", False, id="text-after-declaration"),
    ],
)
def test_svg_prolog(head: bytes, expected: bool) -> None:
    assert (sniff(head) is not None) is expected


def ogg_segments(payload: bytes, segments: int) -> bytes:
    fixed = b"OggS\x00\x02" + bytes(8) + b"\x01\x00\x00\x00" + bytes(4) + bytes(4)
    return fixed + bytes((segments,)) + bytes((len(payload),)) + bytes(segments - 1) + payload


@pytest.mark.parametrize("segments", [1, 2, 5, 255])
def test_ogg_payload_follows_the_segment_table(segments: int) -> None:
    assert _as_tuple(sniff(ogg_segments(b"OpusHead\x01\x02" + bytes(9), segments))) == OPUS
    assert _as_tuple(sniff(ogg_segments(b"\x80theora" + bytes(35), segments))) == OGV
    assert _as_tuple(sniff(ogg_segments(b"\x01vorbis" + bytes(23), segments))) == OGG


def test_ogg_edges() -> None:
    page = ogg_page(b"OpusHead")
    assert _as_tuple(sniff(page[:27])) == OGG
    assert sniff(page[:26]) is None
    assert sniff(b"OggS\x01" + page[5:]) is None  # version 1 does not exist


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param(ebml(b"webm\x00\x00"), WEBM, id="doctype-padded"),
        pytest.param(b"\x1a\x45\xdf\xa3\x84\x42\x82\x81\x77" + bytes(8), None, id="doctype-w"),
        pytest.param(b"\x1a\x45\xdf\xa3\x40\x04\x42\x82\x81\x77", None, id="two-byte-size"),
        pytest.param(b"\x1a\x45\xdf\xa3\x40\x07\x42\x82\x84webm", WEBM, id="two-byte-size-webm"),
        pytest.param(b"\x1a\x45\xdf\xa3\x87\x42\x82\x40\x04webm", WEBM, id="two-byte-element-size"),
        pytest.param(b"\x1a\x45\xdf\xa3\x00", MKV, id="bad-header-size"),
        pytest.param(b"\x1a\x45\xdf\xa3", MKV, id="header-size-missing"),
        pytest.param(b"\x1a\x45\xdf\xa3\x83\x00\x81\x01", MKV, id="bad-element-id"),
        pytest.param(b"\x1a\x45\xdf\xa3\x85\x42\x86\x00", MKV, id="bad-element-size"),
        pytest.param(b"\x1a\x45\xdf\xa3\x84\x42\x82\x84webm", WEBM, id="doctype-past-header"),
        pytest.param(
            b"\x1a\x45\xdf\xa3\x82\x42\x86\x81\x01\x42\x82\x84webm", MKV, id="header-ends-first"
        ),
        pytest.param(
            b"\x1a\x45\xdf\xa3\x88\x42\x86\x81\x01\x42\x82\x84webm", WEBM, id="after-one-element"
        ),
        pytest.param(
            b"\x1a\x45\xdf\xa3\x8b\x42\x86\x81\x01\x42\x82\x88matroska", MKV, id="matroska"
        ),
        pytest.param(b"\x1a\x45\xdf\xa3\x83\x42\x82", MKV, id="element-size-cut"),
        pytest.param(b"\x1a\x45\xdf\xa3\x81\x42", MKV, id="element-id-cut"),
        pytest.param(b"\x1a\x45\xdf\xa3\x88\x42\x86\x81\x01\x42\x82\x84webx", None, id="webx"),
    ],
)
def test_ebml_header_parsing(head: bytes, expected: Expected | None) -> None:
    assert _as_tuple(sniff(head)) == expected


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param(riff(b"WEBP", b"VP8 " + bytes(20)), WEBP, id="webp"),
        pytest.param(riff(b"WAVE", b"fmt " + bytes(20)), WAV, id="wave"),
        pytest.param(riff(b"AVI ", b"LIST" + bytes(20)), AVI, id="avi"),
        pytest.param(riff(b"AVIX", b"LIST" + bytes(20)), None, id="avix"),
        pytest.param(b"RIFF\x00\x00\x00\x00WAV", None, id="form-cut"),
        pytest.param(b"RF64\xff\xff\xff\xffWAVE", WAV, id="rf64-exactly-12"),
        pytest.param(b"BW64\xff\xff\xff\xffWAVE", WAV, id="bw64-exactly-12"),
        pytest.param(b"RF65\xff\xff\xff\xffWAVE", None, id="rf65"),
        pytest.param(iff(b"AIFF")[:12], AIFF, id="aiff-exactly-12"),
        pytest.param(iff(b"AIFC")[:11], None, id="aifc-cut"),
        pytest.param(b"FORN\x00\x00\x00\x20AIFF", None, id="not-form"),
    ],
)
def test_riff_and_iff(head: bytes, expected: Expected | None) -> None:
    assert _as_tuple(sniff(head)) == expected


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param(b"\xff\xd8\xff", JPG, id="jpeg-signature"),
        pytest.param(b"\xff\xd8\xfe", None, id="jpeg-bad"),
        pytest.param(b"II*\x00", TIFF, id="tiff-le"),
        pytest.param(b"II+\x00", TIFF, id="bigtiff-le"),
        pytest.param(b"MM\x00+", TIFF, id="bigtiff-be"),
        pytest.param(b"II*\x01", None, id="tiff-bad"),
        pytest.param(b"fLaC", FLAC, id="flac"),
        pytest.param(b"\xff\x0a", JXL, id="jxl-codestream-only"),
        pytest.param(b"#!AMR\n", AMR, id="amr-exactly"),
        pytest.param(b"#!AMR", None, id="amr-cut"),
        pytest.param(b"MThd\x00\x00\x00\x06", MIDI, id="midi-exactly"),
        pytest.param(b"caff\x00\x01\x00\x00", CAF, id="caf-exactly"),
        pytest.param(b"\x7f\xfe\x80\x01", DTS, id="dts-exactly"),
        pytest.param(b"\x7f\xfe\x80\x02", None, id="dts-bad"),
        pytest.param(ASF_HEADER, ASF, id="asf-guid-only"),
        pytest.param(ASF_HEADER + ASF_AUDIO + ASF_VIDEO, WMV, id="asf-video-wins"),
    ],
)
def test_signatures_exactly(head: bytes, expected: Expected | None) -> None:
    assert _as_tuple(sniff(head)) == expected


@pytest.mark.parametrize("rate_code", [0, 1, 2])
@pytest.mark.parametrize("size_code", range(38))
def test_ac3_frame_lengths(rate_code: int, size_code: int) -> None:
    # Frame sizes in 16-bit words from the AC-3 specification (ATSC A/52, table 5.18).
    words = {0: 2 * AC3_KBPS[size_code // 2], 2: 3 * AC3_KBPS[size_code // 2]}.get(
        rate_code, AC3_KBPS[size_code // 2] * 96000 // 44100 + size_code % 2
    )
    frame = ac3_frame(rate_code, size_code)
    assert len(frame) == 2 * words
    head = (frame + frame[:6])[:SNIFF_BYTES]
    assert _as_tuple(sniff(head)) == AC3
    if len(frame) + 6 <= SNIFF_BYTES:
        assert sniff(frame + b"\x0b\x78\x00\x00\x00\x00") is None
        assert sniff(frame[:-1] + frame[:6] + b"\x00") is None


def test_ac3_frame_sizes_from_the_specification() -> None:
    # A few entries of the table written out, so the formula above is checked too.
    assert [len(ac3_frame(0, code)) // 2 for code in (0, 1, 36, 37)] == [64, 64, 1280, 1280]
    assert [len(ac3_frame(1, code)) // 2 for code in (0, 1, 36, 37)] == [69, 70, 1393, 1394]
    assert [len(ac3_frame(2, code)) // 2 for code in (0, 1, 36, 37)] == [96, 96, 1920, 1920]


@pytest.mark.parametrize("version", [3, 2, 0])
def test_mpeg_audio_free_format_header_alone(version: int) -> None:
    assert sniff(mpeg_header(version, 0, 0)) is None
    assert sniff(mpeg_header(version, 15, 0)) is None
    assert sniff(mpeg_header(version, 1, 3)) is None


def test_upper_case_x_is_not_xml_space() -> None:
    assert sniff(b"X<svg>") is None
    assert sniff(b"<?x?>X<svg>") is None


# --- edges found by mutation testing -------------------------------------------------------------


def _pe_in(size: int, pointer: int, magic: bytes = b"MZ") -> bytes:
    head = bytearray(size)
    head[0:2] = magic
    head[0x3C : 0x3C + 4] = pointer.to_bytes(4, "little")[: max(0, size - 0x3C)]
    head[pointer : pointer + 4] = b"PE\x00\x00"
    return bytes(head[:size])


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param(_pe_in(64, 0x10), "pe", id="pe-exactly-64-bytes"),
        pytest.param(_pe_in(62, 0x10), None, id="pe-pointer-cut"),
        pytest.param(_pe_in(200, 0x80, b"XX"), None, id="pe-without-mz"),
        pytest.param(sfnt()[:12], "font", id="sfnt-exactly-12-bytes"),
    ],
)
def test_non_media_edges(head: bytes, expected: str | None) -> None:
    assert non_media(head) == expected


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param(b"\x00\x00\x01\xba\x45" + bytes(20), MPEG_VIDEO, id="ps-mpeg2-scr-bit-0"),
        pytest.param(b"\x00\x00\x01\xba\x7f" + bytes(20), MPEG_VIDEO, id="ps-mpeg2-all-scr-bits"),
        pytest.param(b"\x00\x00\x01\xba\x2f" + bytes(20), MPEG_VIDEO, id="ps-mpeg1-all-scr-bits"),
        pytest.param(ape()[:6] + b"\x01" + bytes(10), APE, id="ape-byte-after-version"),
        pytest.param(wavpack()[:10] + b"\x01" + bytes(10), WAVPACK, id="wavpack-byte-after"),
        pytest.param(
            b"\x01\x00\x00\x10ftypisom\x00\x00\x00\x00isom", MP4, id="ftyp-box-over-16-mib"
        ),
        pytest.param(
            b"\x00\x00\x00\x18ftypzzzz\x00\x00\x00\x00yisomzzz", None, id="brand-unaligned"
        ),
        pytest.param(
            b"\x1a\x45\xdf\xa3\x84\x42\x86\x81\x01\x42\x82\x84webm",
            MKV,
            id="ebml-header-ends-exactly",
        ),
        pytest.param(b"\x1a\x45\xdf\xa3\x86\x42\x82\x84web\xff", None, id="ebml-doctype-not-ascii"),
        pytest.param(b"\x1a\x45\xdf\xa3\x88\x42\x82\x85webmX", None, id="ebml-doctype-webmx"),
        pytest.param(
            b"\x1a\x45\xdf\xa3" + bytes(8) + b"\x07\x42\x82\x84webm", MKV, id="ebml-zero-size-byte"
        ),
        pytest.param(b"\x1a\x45\xdf\xa3\x89\x00\x80\x42\x82\x84webm", MKV, id="ebml-zero-id-byte"),
        pytest.param(b"\x1a\x45\xdf\xa3\x83\x42\x82\x40", MKV, id="ebml-size-cut"),
        pytest.param(b"\x1a\x45\xdf\xa3\x83\x42\x82\x80", None, id="ebml-empty-doctype-at-end"),
        pytest.param(
            b"\x1a\x45\xdf\xa3\x8c\x42\x82\x41\x04webm\x42\x87\x81\x04",
            None,
            id="ebml-long-doctype",
        ),
        pytest.param(
            b"\x1a\x45\xdf\xa3\x41\x0b\x42\x86\x41\x00" + bytes(256) + b"\x42\x82\x84webm",
            WEBM,
            id="ebml-two-byte-sizes",
        ),
        pytest.param(id3(4, bytes(10), flags=0x01) + b"fLaC", FLAC, id="id3-flag-bit-0"),
        pytest.param(b"<svgX>", None, id="svg-x"),
        pytest.param(b"<??><svg>", SVG_FORMAT, id="svg-empty-declaration"),
        pytest.param(b"<?a?><svg>?>", SVG_FORMAT, id="svg-declaration-end-later"),
        pytest.param(b"<?a?><?b", None, id="svg-second-declaration-cut"),
        pytest.param(b"<!----><svg>", SVG_FORMAT, id="svg-empty-comment"),
        pytest.param(b"<!--a--><svg>-->", SVG_FORMAT, id="svg-comment-end-later"),
        pytest.param(b"<!-- a --><!-- b", None, id="svg-second-comment-cut"),
        pytest.param(b"<!DOCTYPE><svg>", SVG_FORMAT, id="svg-empty-doctype"),
        pytest.param(b"<!--[--><!DOCTYPE svg><svg>", SVG_FORMAT, id="svg-bracket-before-doctype"),
        pytest.param(b"<!DOCTYPE svg [<!ENTITY a 'x'>]><svg>[", SVG_FORMAT, id="svg-bracket-after"),
        pytest.param(
            b"<!--]--><!DOCTYPE svg [<!ENTITY e '>'>]><svg>",
            SVG_FORMAT,
            id="svg-close-bracket-before",
        ),
        pytest.param(
            b"<!DOCTYPE svg [ <!ENTITY e 'x'> ]><svg>]", SVG_FORMAT, id="svg-close-bracket-after"
        ),
    ],
)
def test_detector_edges(head: bytes, expected: Expected | MediaFormat | None) -> None:
    found = sniff(head)
    if isinstance(expected, MediaFormat):
        expected = _as_tuple(expected)
    assert _as_tuple(found) == expected


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param(b"\xe9\x00" + b"a" * 98, False, id="legacy-text-with-nul"),
        pytest.param(b"\x0c<html>" + CONTROLS, False, id="form-feed-before-markup"),
    ],
)
def test_text_edges(head: bytes, expected: bool) -> None:
    assert looks_textual(head) is expected


def test_sniff_bytes_is_4096() -> None:
    assert SNIFF_BYTES == 4096
    assert looks_textual(b"a" * 4096 + b"\x00") is True
    assert looks_textual(b"a" * 4095 + b"\x00") is False


@pytest.mark.parametrize("version", [b"GIF87a", b"GIF89a"])
def test_both_gif_versions(version: bytes) -> None:
    head = version + b"\x01\x00\x01\x00\x80\x00\x00"
    assert _as_tuple(sniff(head)) == GIF
    assert sniff(version[:5] + b"b" + head[6:]) is None


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param(png_bytes(width=1 << 24), PNG, id="png-width-high-byte"),
        pytest.param(png_bytes(height=1 << 24), PNG, id="png-height-high-byte"),
        pytest.param(png_bytes(width=0, height=1 << 24), None, id="png-zero-width-tall"),
        pytest.param(qoi(width=1 << 24), QOI, id="qoi-width-high-byte"),
        pytest.param(qoi(height=1 << 24), QOI, id="qoi-height-high-byte"),
        pytest.param(qoi(width=0, height=1 << 24), None, id="qoi-zero-width-tall"),
        pytest.param(au(offset=1 << 24), AU, id="au-offset-high-byte"),
        pytest.param(au(encoding=1), AU, id="au-mu-law"),
        pytest.param(au(channels=1 << 24), AU, id="au-channels-high-byte"),
        pytest.param(au(channels=0) + b"\x01", None, id="au-no-channels-then-data"),
        pytest.param(b"XXXX" + au()[4:], None, id="au-without-magic"),
        pytest.param(flv(header_size=(1 << 24) + 9), None, id="flv-header-size-high-byte"),
        pytest.param(b"\x00\x00\x01\xb3\x01\x00\xf0\x14" + bytes(8), MPEG_VIDEO, id="es-width-16"),
        pytest.param(b"\x00\x00\x01\xb3\x00\x01\xf0\x14" + bytes(8), None, id="es-zero-width-tall"),
        pytest.param(
            b"\x00\x00\x01\xb3\x16\x01\x00\x14" + bytes(8), MPEG_VIDEO, id="es-height-256"
        ),
        pytest.param(
            b"\x01\x00\x00\x10ftypzzzz\x00\x00\x00\x00isom", MP4, id="ftyp-huge-box-compatible"
        ),
        pytest.param(b"<!-- a --><!DOCTYPE svg><svg>", SVG_FORMAT, id="svg-comment-then-doctype"),
        pytest.param(b"  \t <svg>", SVG_FORMAT, id="svg-after-spaces"),
    ],
)
def test_header_fields_read_whole(head: bytes, expected: Expected | None) -> None:
    assert _as_tuple(sniff(head)) == expected
