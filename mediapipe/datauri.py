"""``data:`` URIs (spec §3.3): recognise them and decode them with w3lib's parser."""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from w3lib.url import parse_data_uri

__all__ = ["BadDataURI", "decode_data_uri", "is_data_uri"]

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
    if header.endswith(";base64") and not _BASE64_PAYLOAD.fullmatch(raw, header_end.end()):
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
