from __future__ import annotations

import base64
import os
from urllib.parse import quote_from_bytes

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediapipe import datauri
from mediapipe.datauri import BadDataURI, decode_data_uri, is_data_uri, open_data_uri

FUZZ_EXAMPLES = int(os.environ.get("MEDIAPIPE_FUZZ_EXAMPLES", "300"))

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_BASE64 = base64.b64encode(PNG_SIGNATURE + b"\x00\x00\x00\rIHDR").decode()
SVG = '<svg xmlns="http://www.w3.org/2000/svg"/>'


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("data:,x", True),
        ("DATA:image/png;base64,AA==", True),
        ("Data:", True),
        (" data:,x", False),
        ("https://x.test/data:,x", False),
        ("/data:,x", False),
        ("dat", False),
        ("datauri", False),
        ("", False),
    ],
)
def test_is_data_uri(source: str, expected: bool) -> None:
    assert is_data_uri(source) is expected


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (
            f"data:image/png;base64,{PNG_BASE64}",
            ("image/png", PNG_SIGNATURE + b"\x00\x00\x00\rIHDR"),
        ),
        (
            f"DATA:IMAGE/PNG;base64,{PNG_BASE64}",
            ("image/png", PNG_SIGNATURE + b"\x00\x00\x00\rIHDR"),
        ),
        ("Data:image/png;base64,iVBO\n Rw0K\r\nGgo=", ("image/png", PNG_SIGNATURE)),
        ("data:image/png;base64,iVBORw0KGgo%3D", ("image/png", PNG_SIGNATURE)),
        ("data:image/png;base64,%2B%2F%2B%2F", ("image/png", b"\xfb\xff\xbf")),
        ("data:image/png;base64,", ("image/png", b"")),
        ("data:image/png;BASE64,QQ==", ("image/png", b"A")),  # RFC 2397 ignores case
        ("data:image/png;Base64,QUJD", ("image/png", b"ABC")),
        (
            "data:image/svg+xml,%3Csvg%20xmlns%3D%22x%22%2F%3E",
            ("image/svg+xml", b'<svg xmlns="x"/>'),
        ),
        (f"data:image/svg+xml;charset=utf-8,{SVG}", ("image/svg+xml", SVG.encode())),
        ('data:image/svg+xml;charset="utf-8";foo=bar,<svg/>', ("image/svg+xml", b"<svg/>")),
        ("data:,hello", (None, b"hello")),
        ("data:;charset=utf-8,hello", (None, b"hello")),
        ("data:;base64,aGk=", (None, b"hi")),
        ("data:text/plain,hello", ("text/plain", b"hello")),
        ("data:,h\u00e9llo %E7%8C%AB", (None, "héllo 猫".encode())),
        ("data:audio/mpeg;base64,SUQz", ("audio/mpeg", b"ID3")),
    ],
)
def test_decode_data_uri(uri: str, expected: tuple[str | None, bytes]) -> None:
    assert decode_data_uri(uri) == expected


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("data:", "no ','"),
        ("data:image/png", "no ','"),
        ("data:image/png;base64", "no ','"),
        ("data:image/png;base64,@@@", "base64"),
        ("data:image/png;base64,iVBORw0KGgo", "padding"),
        ("data:image/png;base64,QQ==QQ==", "base64"),
        ("data:image/png;base64,QQ==\u00e9", "base64"),
        ("data:image/png;base64,QQ%40=", "base64"),
        ("data:image/png;foo,bar", "malformed"),
        ("data:image png,bar", "malformed"),
        ("data:imäge/png,x", "malformed"),
        ("data:\ud800,x", "surrogates"),
        ("https://x.test/a.png", "not a data: URI"),
        (" data:,x", "not a data: URI"),
        ("", "not a data: URI"),
    ],
)
def test_malformed_data_uris(uri: str, message: str) -> None:
    with pytest.raises(BadDataURI, match=message):
        decode_data_uri(uri)


def test_bad_data_uri_is_a_value_error() -> None:
    assert issubclass(BadDataURI, ValueError)


def decode_or_message(uri: str) -> tuple[str | None, bytes] | str:
    try:
        return decode_data_uri(uri)
    except BadDataURI as error:
        return str(error)


shaped_data_uris = st.builds(
    "{}:{}{},{}".format,
    st.sampled_from(["data", "DATA", "Data"]),
    st.one_of(
        st.sampled_from(["", "image/png", "text/plain;charset=utf-8", 'a/b;x="y"', "a/b;"]),
        st.text(max_size=12),
    ),
    st.sampled_from(["", ";base64", ";BASE64"]),
    st.one_of(st.text(alphabet="ABCDabcd0123+/=%2BF \n", max_size=24), st.text(max_size=24)),
)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None)
@given(st.one_of(st.text(), st.text().map("data:".__add__), shaped_data_uris))
def test_decode_only_raises_bad_data_uri(uri: str) -> None:
    outcome = decode_or_message(uri)

    if isinstance(outcome, str):
        assert outcome  # a short human message
    else:
        declared, data = outcome
        assert is_data_uri(uri)
        assert declared is None or declared == declared.lower()
        assert isinstance(data, bytes)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None)
@given(st.binary())
def test_base64_round_trip(data: bytes) -> None:
    uri = "data:application/octet-stream;base64," + base64.b64encode(data).decode()
    assert decode_data_uri(uri) == ("application/octet-stream", data)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None)
@given(st.binary())
def test_percent_encoded_round_trip(data: bytes) -> None:
    uri = "data:application/octet-stream," + quote_from_bytes(data, safe="")
    assert decode_data_uri(uri) == ("application/octet-stream", data)


def open_pieces(uri: str) -> tuple[str | None, list[bytes]]:
    declared, pieces = open_data_uri(uri)
    return declared, list(pieces)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (
            f"data:image/png;base64,{PNG_BASE64}",
            ("image/png", [PNG_SIGNATURE + b"\x00\x00\x00\rIHDR"]),
        ),
        ("DATA:IMAGE/PNG;BASE64,QUJD", ("image/png", [b"ABC"])),
        ("data:;base64,QUI=", (None, [b"AB"])),
        ("data:audio/mpeg;base64,", ("audio/mpeg", [])),
        # Not plain base64: decoded whole by w3lib, in one piece.
        ("data:image/png;base64,QU JD", ("image/png", [b"ABC"])),
        ("data:image/png;base64,QUI%3D", ("image/png", [b"AB"])),
        ("data:image%2Fpng;base64,QUJD", ("image/png", [b"ABC"])),
        ("data:image/svg+xml,<svg/>", ("image/svg+xml", [b"<svg/>"])),
        ("data:,", (None, [b""])),
    ],
)
def test_open_data_uri(uri: str, expected: tuple[str | None, list[bytes]]) -> None:
    assert open_pieces(uri) == expected


def test_open_data_uri_decodes_plain_base64_in_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datauri, "_BASE64_STEP", 8)
    payload = bytes(range(20))
    uri = "data:application/octet-stream;base64," + base64.b64encode(payload).decode()

    declared, pieces = open_pieces(uri)

    assert declared == "application/octet-stream"
    assert pieces == [payload[0:6], payload[6:12], payload[12:18], payload[18:20]]


def test_open_data_uri_default_step_is_whole_groups() -> None:
    assert datauri._BASE64_STEP == 1 << 20
    payload = bytes(range(256)) * 4100  # over one step of base64 text
    uri = "data:;base64," + base64.b64encode(payload).decode()
    declared, pieces = open_pieces(uri)
    assert declared is None
    assert [len(piece) for piece in pieces] == [786432, len(payload) - 786432]
    assert b"".join(pieces) == payload


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("https://x.test/a.png", "not a data: URI"),
        ("", "not a data: URI"),
        ("data:image/png;base64", "no ','"),
        ("data:image/png;base64,@@@@", "base64"),
        ("data:image/png;base64,QQ==QQ==", "base64"),
        ("data:image/png;base64,QUI", "padding"),
        ("data:imäge/png;base64,QUJD", "malformed"),
    ],
)
def test_open_data_uri_refuses(uri: str, message: str) -> None:
    with pytest.raises(BadDataURI, match=message):
        open_pieces(uri)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None)
@given(st.binary(max_size=64), st.sampled_from(["", "image/png", "audio/mpeg"]))
def test_open_data_uri_agrees_with_decode(data: bytes, kind: str) -> None:
    uri = f"data:{kind};base64," + base64.b64encode(data).decode()
    declared, pieces = open_pieces(uri)
    assert (declared, b"".join(pieces)) == decode_data_uri(uri)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("https://x.test/a.png", "not a data: URI"),
        ("data:\ud800,x", "data: URI contains unpaired surrogates"),
        ("data:image/png", "data: URI has no ',' before its payload"),
        ("data:image/png;base64,@@@@", "data: URI has an invalid base64 payload"),
        ("data:;base64,=QUJ", "data: URI has an invalid base64 payload"),
        ("data:image/png;foo,bar", "malformed data: URI (invalid data URI)"),
    ],
)
def test_exact_messages(uri: str, message: str) -> None:
    with pytest.raises(BadDataURI) as caught:
        decode_data_uri(uri)
    assert str(caught.value) == message
    with pytest.raises(BadDataURI) as opened:
        open_pieces(uri)
    assert str(opened.value) == message


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("data:image/png%2Cabc", ("image/png", b"abc")),  # an escaped comma ends the header
        ("data:image/png%2cabc", ("image/png", b"abc")),
        ("data:image/png;BASE64%2CQUJD", ("image/png", b"ABC")),
    ],
)
def test_escaped_comma_ends_the_header(uri: str, expected: tuple[str | None, bytes]) -> None:
    assert decode_data_uri(uri) == expected
    declared, pieces = open_pieces(uri)
    assert (declared, b"".join(pieces)) == expected


def test_escaped_comma_in_a_parameter_is_not_plain_base64() -> None:
    with pytest.raises(BadDataURI, match="malformed"):
        open_pieces("data:image/png;x=%2C;base64,QUJD")


def test_open_data_uri_steps_with_an_odd_header(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datauri, "_BASE64_STEP", 4)
    assert open_pieces("data:audio/mp4;base64,QUJDREVG") == ("audio/mp4", [b"ABC", b"DEF"])
    assert open_pieces("data:video/mp4;base64,QUJDREVG") == ("video/mp4", [b"ABC", b"DEF"])


def test_open_data_uri_escaped_header_is_decoded_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datauri, "_BASE64_STEP", 4)
    assert open_pieces("data:audio%2Fmp4;base64,QUJDREVG") == ("audio/mp4", [b"ABCDEF"])


def test_open_data_uri_header_ends_at_the_first_comma() -> None:
    assert open_pieces("data:,x;base64,QUJD") == (None, [b"x;base64,QUJD"])
