"""Property tests over the pure parts: names, sniffing, content types and ``data:`` URIs.

They complement the properties in test_naming.py, test_sniff.py and test_datauri.py with the
combinations those leave out: tags of mixed types (bytes, floats, nested lists, odd objects),
labels fed straight to build_name, judge_body on heads built from real signatures, and
open_data_uri against decode_data_uri. ``MEDIAPIPE_FUZZ_EXAMPLES`` sets the example count
(CI runs it with 10000).
"""

from __future__ import annotations

import base64
import os
import unicodedata
from typing import Any
from unittest import mock
from urllib.parse import quote_from_bytes

from hypothesis import given, settings
from hypothesis import strategies as st

from mediapipe import datauri
from mediapipe.datauri import BadDataURI, decode_data_uri, open_data_uri
from mediapipe.mediatypes import (
    KNOWN_EXTENSIONS,
    ContentTypeVerdict,
    classify_content_type,
    essence,
    extension_for_mime,
    normalize_ext,
)
from mediapipe.naming import (
    MAX_EPOCH,
    MIN_NAME_BYTES,
    build_name,
    make_label,
    media_name,
    safe_label,
    source_hash,
)
from mediapipe.sniff import (
    SNIFF_BYTES,
    Verdict,
    can_verify,
    judge_body,
    looks_textual,
    non_media,
    sniff,
)
from tests import media

FUZZ_EXAMPLES = int(os.environ.get("MEDIAPIPE_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None)

FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
NAME_EXTENSIONS = sorted({normalize_ext(ext) for ext in KNOWN_EXTENSIONS} | {""})
REASONS = (None, "empty", "content-mismatch", "unknown-format")

# -- strategies ----------------------------------------------------------------------------------

# Text that favours the characters the label rules care about.
tricky_chars = st.sampled_from(
    [
        "\u200b", "\u200d", "\u202e", "\u2066", "\ufe0f", "\U000e0101", "\u034f", "\u3164",
        "\u0301", "\u0308", "e", "É", "ß", "ﬁ", "Å", "猫", "🐱", "👍🏽", "\u0000", "\x7f", "\n",
        "/", "\\", ":", "?", "*", "+", ",", ".", "_", "-", " ", "\ud800", "\udfff", "\ue000",
        "\U0010ffff", "\u0378", "٣", "Ⅻ", "½", "²", "\u1100\u1161",
    ]
)  # fmt: skip
label_text = st.one_of(
    st.text(),
    st.lists(st.one_of(tricky_chars, st.characters()), max_size=40).map("".join),
    st.text(min_size=200, max_size=400),
)


class OddStr:
    """A tag whose str() is arbitrary text."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"OddStr({self.text!r})"


scalar_tags = st.one_of(
    st.none(),
    label_text,
    st.binary(max_size=20),
    st.integers(),
    st.floats(),  # nan and ±inf included
    st.booleans(),
    st.decimals(allow_nan=True),
    st.complex_numbers(),
    st.builds(OddStr, label_text),
)
mixed_tags = st.one_of(
    st.none(),
    scalar_tags,
    st.lists(st.one_of(scalar_tags, st.lists(scalar_tags, max_size=3)), max_size=8),
    st.tuples(scalar_tags, scalar_tags),
    st.frozensets(st.one_of(st.text(max_size=5), st.integers()), max_size=4),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
alts = st.one_of(st.none(), label_text, st.integers(), st.floats(), st.binary(max_size=20))
max_name_bytes = st.integers(min_value=MIN_NAME_BYTES, max_value=255)


def pattern_matches(kind: str, pattern: str) -> bool:
    """README: ``type/*`` or an exact type, compared without parameters and case."""
    wanted = pattern.partition(";")[0].strip().lower()
    if wanted in {"*", "*/*"}:
        return True
    if wanted.endswith("/*"):
        return kind.startswith(wanted[:-1])
    return bool(wanted) and kind == wanted


def check_name(name: str, max_bytes: int, epoch_prefix: str | None, tail: str) -> str:
    """The invariants of every name; returns its label part."""
    assert len(name.encode("utf-8")) <= max_bytes, (name, max_bytes)
    assert name.endswith("_" + tail)
    assert not {"/", "\\", "\x00"} & set(name)
    assert not {unicodedata.category(char) for char in name} & FORBIDDEN_CATEGORIES, name
    epoch, _, rest = name.partition("_")
    assert epoch.isdigit()
    assert 0 <= int(epoch) <= MAX_EPOCH
    if epoch_prefix is not None:
        assert epoch == epoch_prefix
    label = rest[: -len(tail)].removesuffix("_")
    assert unicodedata.is_normalized("NFC", label)
    assert safe_label(label) == label
    return label


# -- naming --------------------------------------------------------------------------------------


@FUZZ
@given(
    source=st.one_of(st.text(), st.text(alphabet=st.characters(codec="utf-8"))),
    tags=mixed_tags,
    alt=alts,
    ext=st.one_of(st.sampled_from(NAME_EXTENSIONS), st.sampled_from(sorted(KNOWN_EXTENSIONS))),
    max_bytes=max_name_bytes,
    last_modified=st.one_of(st.none(), st.text(max_size=40), st.binary(max_size=40)),
    date=st.one_of(st.none(), st.text(max_size=40), st.binary(max_size=40)),
)
def test_media_name_with_mixed_tag_types(
    source: str,
    tags: Any,
    alt: Any,
    ext: str,
    max_bytes: int,
    last_modified: str | bytes | None,
    date: str | bytes | None,
) -> None:
    name = media_name(source, tags, alt, ext, last_modified, date, now=1e9, max_bytes=max_bytes)
    label = check_name(name, max_bytes, None, f"{source_hash(source)}{normalize_ext(ext)}")
    # The label kept is a prefix of the full label, cut at a code-point boundary.
    full = make_label(tags, alt)
    assert full.startswith(label)


@FUZZ
@given(tags=mixed_tags, alt=alts)
def test_make_label_takes_any_tags(tags: Any, alt: Any) -> None:
    label = make_label(tags, alt)
    assert safe_label(label) == label
    assert unicodedata.is_normalized("NFC", label)
    assert not {unicodedata.category(char) for char in label} & FORBIDDEN_CATEGORIES
    if alt is None and not tags:
        assert label == ""


@FUZZ
@given(
    text=label_text,
    epoch=st.integers(min_value=0, max_value=MAX_EPOCH),
    h16=st.text(alphabet="0123456789abcdef", min_size=16, max_size=16),
    ext=st.sampled_from(NAME_EXTENSIONS),
    max_bytes=max_name_bytes,
)
def test_build_name_from_any_safe_label(
    text: str, epoch: int, h16: str, ext: str, max_bytes: int
) -> None:
    label = safe_label(text)
    name = build_name(epoch, label, h16, ext, max_bytes)
    kept = check_name(name, max_bytes, str(epoch), f"{h16}{ext}")
    assert label.startswith(kept)
    if len(label.encode("utf-8")) <= max_bytes - len(f"{epoch}__{h16}{ext}"):
        assert kept == label  # only a label that does not fit is shortened


@FUZZ
@given(label_text)
def test_safe_label_output_categories(text: str) -> None:
    label = safe_label(text)
    assert not {unicodedata.category(char) for char in label} & FORBIDDEN_CATEGORIES
    assert unicodedata.is_normalized("NFC", label)
    assert label == label.strip(".,_+-")


# -- sniffing and content types ------------------------------------------------------------------

SIGNATURES = [
    media.PNG,
    media.JPEG,
    media.GIF,
    media.WEBP,
    media.WAV,
    media.MP4,
    media.SVG,
    media.HTML,
    media.JSON,
    media.NOISE,
    b"\x1aE\xdf\xa3",
    b"OggS\x00\x02",
    b"ID3\x04\x00\x00\x00\x00\x00\x00",
    b"\xff\xfb\x90\x64",
    b"\xff\xf1\x50\x80",
    b"fLaC",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"\x00\x00\x01\x00\x01\x00",
    b"RIFF\x00\x00\x00\x00AVI ",
    b"\x00\x00\x00\x1cftypavif",
    b"\x00\x00\x00\x18ftypheic",
    b"\xef\xbb\xbf<html>",
    b"\xff\xfe<\x00h\x00",
    b"<?xml version='1.0'?>",
]
declared_types = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "image/png", "image/jpeg", "IMAGE/PNG; charset=binary", "image/svg+xml", "audio/mpeg",
            "audio/x-unknown", "video/mp4", "VIDEO/WEBM ; x=y", "application/octet-stream",
            "binary/octet-stream", "text/html", "", ";", " ; ", "audio/", "video/",
        ]
    ),
    st.text(max_size=30),
)  # fmt: skip
heads = st.one_of(
    st.binary(max_size=SNIFF_BYTES + 64),
    st.builds(
        lambda signature, cut, tail: (signature + tail)[:cut],
        st.sampled_from(SIGNATURES),
        st.integers(min_value=0, max_value=SNIFF_BYTES + 64),
        st.binary(max_size=SNIFF_BYTES),
    ),
    st.builds(lambda text: text.encode("utf-8", "surrogatepass"), st.text(max_size=200)),
    st.builds(lambda text: text.encode("utf-16"), st.text(max_size=200)),
)


@FUZZ
@given(head=heads, declared=declared_types, url=st.one_of(st.none(), st.text(max_size=60)))
def test_judge_body_reasons(head: bytes, declared: str | None, url: str | None) -> None:
    found = sniff(head)
    textual = looks_textual(head)
    verdict = judge_body(declared, head, url)

    assert isinstance(verdict, Verdict)
    assert verdict.reason in REASONS
    assert not (found is not None and textual)
    kind = essence(declared)
    if not head:
        assert verdict.reason == "empty"
    elif found is not None:
        assert verdict.reason is None
        assert (verdict.mime, verdict.ext) == (found.mime, found.ext)
        assert found.ext in KNOWN_EXTENSIONS
    elif textual or non_media(head) is not None:
        assert verdict.reason == "content-mismatch"
    elif kind is not None and kind.startswith(("audio/", "video/")) and not can_verify(kind):
        assert verdict.reason is None
        assert verdict.mime == kind
        assert verdict.ext == "" or verdict.ext in KNOWN_EXTENSIONS
    else:
        assert verdict.reason == "unknown-format"
    if len(head) >= SNIFF_BYTES:  # only the first SNIFF_BYTES count
        assert sniff(head + b"\x00" * 16) == found
        assert judge_body(declared, head + b"tail", url) == verdict


@FUZZ
@given(head=heads)
def test_sniff_accepts_memoryview_and_bytearray(head: bytes) -> None:
    found = sniff(head)
    # Buffers other than bytes (sniff copies its head with bytes() itself).
    assert sniff(bytearray(head)) == found  # type: ignore[arg-type]
    assert sniff(memoryview(head)) == found  # type: ignore[arg-type]
    assert looks_textual(bytearray(head)) == looks_textual(head)  # type: ignore[arg-type]


@FUZZ
@given(
    content_type=st.one_of(
        st.none(), st.text(), st.binary(), declared_types, st.text().map(str.upper)
    ),
    allowed=st.one_of(
        st.lists(
            st.one_of(
                st.sampled_from(["image/*", "audio/*", "video/*", "*/*", "*", "image/png"]),
                st.text(max_size=12),
            ),
            max_size=5,
        ),
        st.text(max_size=12),
        st.tuples(st.text(max_size=8)),
    ),
)
def test_classify_content_type_is_consistent(
    content_type: str | bytes | None, allowed: list[str] | str | tuple[str]
) -> None:
    kind = essence(content_type)
    verdict = classify_content_type(content_type, allowed)
    assert isinstance(verdict, ContentTypeVerdict)
    assert kind is None or (kind == kind.strip().lower() and kind and ";" not in kind)
    if kind is None or kind in {"application/octet-stream", "binary/octet-stream"}:
        assert verdict is ContentTypeVerdict.SNIFF
    patterns = [allowed] if isinstance(allowed, str) else list(allowed)
    if kind is not None and verdict is not ContentTypeVerdict.SNIFF:
        matched = any(pattern_matches(kind, pattern) for pattern in patterns)
        assert verdict is (ContentTypeVerdict.ACCEPT if matched else ContentTypeVerdict.REFUSE)
    # The same type with other parameters, case and spacing gets the same verdict.
    if isinstance(content_type, str) and kind is not None and content_type.isascii():
        variant = f"  {kind.upper()} ; q=1"
        assert classify_content_type(variant, allowed) is verdict
    assert isinstance(extension_for_mime(kind), str)


# -- data: URIs ----------------------------------------------------------------------------------


def open_or_error(uri: str) -> tuple[str | None, bytes] | BadDataURI:
    """open_data_uri with its pieces joined, or the BadDataURI it raised (on open or later)."""
    try:
        declared, pieces = open_data_uri(uri)
        return declared, b"".join(pieces)
    except BadDataURI as error:
        return error


def decode_or_error(uri: str) -> tuple[str | None, bytes] | BadDataURI:
    try:
        return decode_data_uri(uri)
    except BadDataURI as error:
        return error


base64_payloads = st.one_of(
    st.binary().map(lambda data: base64.b64encode(data).decode()),
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", max_size=40
    ),
    st.builds(
        lambda data, cut: base64.b64encode(data).decode()[:cut],
        st.binary(min_size=1, max_size=60),
        st.integers(min_value=0, max_value=80),
    ),
    st.builds(
        lambda data, junk, at: (lambda s: s[:at] + junk + s[at:])(base64.b64encode(data).decode()),
        st.binary(max_size=30),
        st.sampled_from(["=", "==", " ", "\n", "%2B", "%3D", "@", "-", "_", "é", "%", "===="]),
        st.integers(min_value=0, max_value=60),
    ),
)
headers = st.one_of(
    st.sampled_from(
        [
            "", "image/png", "IMAGE/PNG", "video/mp4;name=a.mp4", 'a/b;x="y,z"', "text/plain;",
            "image/png;charset=utf-8", "%20image/png", "image%2Fpng", ";", "image/png;;",
        ]
    ),
    st.text(max_size=15),
)  # fmt: skip
base64_flags = st.sampled_from([";base64", ";BASE64", ";Base64", "", ";base64 ", ";base 64"])
schemes = st.sampled_from(["data:", "DATA:", "Data:", "data: ", " data:", "dat:"])
data_uris = st.one_of(
    st.builds(lambda s, h, f, p: f"{s}{h}{f},{p}", schemes, headers, base64_flags, base64_payloads),
    st.builds(lambda s, h, p: f"{s}{h},{p}", schemes, headers, st.text(max_size=40)),
    st.text().map("data:".__add__),
    st.text(),
)


@FUZZ
@given(uri=data_uris, step=st.sampled_from([4, 8, 1 << 20]))
def test_open_and_decode_agree(uri: str, step: int) -> None:
    """Both only ever raise BadDataURI; when one decodes, the other gives the same result
    (also with the piecewise decoder cutting the payload in pieces of a few characters)."""
    with mock.patch.object(datauri, "_BASE64_STEP", step):
        opened = open_or_error(uri)
    decoded = decode_or_error(uri)

    if isinstance(decoded, BadDataURI):
        assert str(decoded)
        assert isinstance(opened, BadDataURI), (
            f"open_data_uri accepted what decode refused: {uri!r}"
        )
    else:
        assert opened == decoded, uri
        declared, data = decoded
        assert declared is None or declared == declared.lower()
        assert isinstance(data, bytes)


@FUZZ
@given(
    data=st.binary(max_size=4096),
    declared=st.sampled_from(["application/octet-stream", "image/png", "VIDEO/MP4"]),
)
def test_base64_round_trips_through_both(data: bytes, declared: str) -> None:
    uri = f"data:{declared};base64," + base64.b64encode(data).decode()
    expected = (declared.lower(), data)
    assert decode_data_uri(uri) == expected
    opened_type, pieces = open_data_uri(uri)
    assert (opened_type, b"".join(pieces)) == expected


@FUZZ
@given(data=st.binary(max_size=256), flag=st.sampled_from([";BASE64", ";Base64", ";bAsE64"]))
def test_base64_flag_is_case_insensitive(data: bytes, flag: str) -> None:
    """RFC 2397's grammar is ABNF, whose literals are case-insensitive, and browsers take
    ";BASE64"; open_data_uri itself compares the flag lower-cased. README: data: URIs, base64
    or percent-encoded, are decoded."""
    uri = f"data:image/png{flag}," + base64.b64encode(data).decode()
    assert decode_or_error(uri) == ("image/png", data)
    assert open_or_error(uri) == ("image/png", data)


@FUZZ
@given(data=st.binary(max_size=2048), step=st.sampled_from([4, 8, 12, 64, 1024]))
def test_open_data_uri_in_small_steps(data: bytes, step: int) -> None:
    """The piecewise decoder, with pieces far smaller than in production, still joins up to
    exactly the bytes (every cut falls between whole base64 groups)."""
    uri = "data:application/octet-stream;base64," + base64.b64encode(data).decode()
    with mock.patch.object(datauri, "_BASE64_STEP", step):
        declared, pieces = open_data_uri(uri)
        chunks = list(pieces)
    assert declared == "application/octet-stream"
    assert b"".join(chunks) == data
    assert all(len(chunk) <= step // 4 * 3 for chunk in chunks)


@FUZZ
@given(data=st.binary(max_size=1024))
def test_percent_encoded_round_trips_through_both(data: bytes) -> None:
    uri = "data:audio/wav," + quote_from_bytes(data, safe="")
    assert decode_data_uri(uri) == ("audio/wav", data)
    declared, pieces = open_data_uri(uri)
    assert (declared, b"".join(pieces)) == ("audio/wav", data)
