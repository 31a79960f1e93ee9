"""``data:`` URIs (contract §3.3): recognise them and decode them with w3lib's parser."""

from __future__ import annotations

import binascii
import re
from typing import TYPE_CHECKING
from urllib.parse import unquote_to_bytes

from w3lib.url import parse_data_uri

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["BadDataURI", "decode_data_uri", "is_data_uri", "open_data_uri"]

_SCHEME = "data:"
# w3lib percent-decodes the whole URI before splitting it, so "%2C" ends the header too.
_HEADER_END = re.compile(rb",|%2[Cc]")
# w3lib's base64 decoding silently skips characters outside the alphabet ("@@@" gives b"");
# this pattern makes such payloads an error instead. Whitespace (raw or percent-encoded) is
# allowed anywhere, as in HTML attributes, and "=" padding only at the end.
_BASE64_PAYLOAD = re.compile(
    rb"[A-Za-z0-9+/\s]*(?:%(?:2[Bb]|2[Ff]|20|0[9AaDd])[A-Za-z0-9+/\s]*)*"
    rb"(?:(?:=|%3[Dd])(?:\s|%(?:20|0[9AaDd]))*){0,2}"
)


# A plain base64 payload (the common case for large URIs): no whitespace, no escapes.
_PLAIN_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
# Characters of base64 decoded per step; a multiple of 4, so every step is whole groups.
_BASE64_STEP = 1 << 20


class BadDataURI(ValueError):
    """A ``data:`` URI that cannot be decoded."""


def is_data_uri(source: str) -> bool:
    """True when the source starts with the ``data:`` scheme (any case, no leading space)."""
    prefix = source[: len(_SCHEME)]
    return prefix.isascii() and prefix.lower() == _SCHEME


def decode_data_uri(uri: str) -> tuple[str | None, bytes]:
    """Return the declared media type (lower-cased essence, None when absent) and the bytes.

    Base64 and percent-encoded payloads are decoded by ``w3lib.url.parse_data_uri``. Any
    malformed URI raises :class:`BadDataURI`, never another exception.
    """
    if not is_data_uri(uri):
        raise BadDataURI("not a data: URI")
    try:
        # Handing w3lib bytes skips its URL re-quoting, which would copy the payload several
        # times. Non-ASCII characters arrive as raw UTF-8, as a browser would percent-encode them.
        raw = uri.encode("utf-8")
    except UnicodeEncodeError:
        raise BadDataURI("data: URI contains unpaired surrogates") from None
    header_end = _HEADER_END.search(raw, len(_SCHEME))
    if header_end is None:
        raise BadDataURI("data: URI has no ',' before its payload")
    header = unquote_to_bytes(raw[len(_SCHEME) : header_end.start()]).decode("latin-1")
    base64 = header.lower().endswith(";base64")
    if base64 and not header.endswith(";base64"):
        # RFC 2397's grammar ignores case, w3lib does not: spell the flag as w3lib expects.
        header = header[: -len(";base64")] + ";base64"
        raw = b"data:" + header.encode("latin-1") + raw[header_end.start() :]
        header_end = _HEADER_END.search(raw, len(_SCHEME))
        assert header_end is not None
    if base64 and not _BASE64_PAYLOAD.fullmatch(raw, header_end.end()):
        raise BadDataURI("data: URI has an invalid base64 payload")
    try:
        # What remains: w3lib percent-decodes the URI and slices the payload out of it (two
        # copies of it), then base64-decodes; the result is returned as is.
        parsed = parse_data_uri(raw)
    except ValueError as error:  # binascii.Error and UnicodeError are ValueErrors too
        raise BadDataURI(f"malformed data: URI ({error})") from None
    media_type = header.partition(";")[0].strip()
    # w3lib reports "text/plain" for a URI without a type; keep the absence visible.
    return (parsed.media_type.lower() if media_type else None), parsed.data


def open_data_uri(uri: str) -> tuple[str | None, Iterator[bytes]]:
    """Like :func:`decode_data_uri`, but the bytes come in pieces.

    w3lib decodes a payload whole, from copies of it; for a large image that is several copies
    of many megabytes. A plain base64 payload (the usual form of large URIs) is therefore cut
    into whole 4-character groups and each piece decoded as it is needed, so no full copy of
    the payload is ever made; w3lib still parses its header. Other payloads are decoded by
    w3lib whole.
    """
    if not is_data_uri(uri):
        raise BadDataURI("not a data: URI")
    comma = uri.find(",", len(_SCHEME))
    header = uri[len(_SCHEME) : comma]  # meaningless without a comma, and then not used
    plain = (
        comma != -1
        and header.isascii()
        and header.lower().endswith(";base64")
        and "%" not in header
        and (len(uri) - comma - 1) % 4 == 0
        and _PLAIN_BASE64.fullmatch(uri, comma + 1) is not None
    )
    if not plain:
        declared, data = decode_data_uri(uri)
        return declared, iter((data,))
    declared, _ = decode_data_uri(uri[: comma + 1])
    return declared, _base64_pieces(uri, comma + 1)


def _base64_pieces(uri: str, start: int) -> Iterator[bytes]:
    for offset in range(start, len(uri), _BASE64_STEP):
        try:
            yield binascii.a2b_base64(uri[offset : offset + _BASE64_STEP], strict_mode=True)
        except binascii.Error as error:
            raise BadDataURI(f"malformed base64 in data: URI ({error})") from None
