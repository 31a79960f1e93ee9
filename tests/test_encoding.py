"""Compressed media bodies (a server that ignores ``Accept-Encoding: identity``): every form
of gzip and deflate decodes to the exact bytes, and the size limit holds on the wire as well
as after decoding."""

from __future__ import annotations

import gzip
import hashlib
import zlib
from typing import TYPE_CHECKING

import pytest
import pytest_twisted

from tests import media
from tests.mockserver import LAST_MODIFIED, body, streamed
from tests.storecheck import leftovers, stored_files

if TYPE_CHECKING:
    from spiders.site_server import Route, SiteHandler
    from tests.conftest import Crawl, CrawlResult
    from tests.mockserver import MockServer

# A JPEG big enough to be cut into several gzip members and several read chunks.
BIG_JPEG = media.JPEG + bytes(range(256)) * 2048


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def members(data: bytes, count: int) -> bytes:
    """``data`` as ``count`` gzip members, one after the other (RFC 1952 §2.2)."""
    step = -(-len(data) // count)
    return b"".join(gzip.compress(data[i : i + step]) for i in range(0, len(data), step))


async def fetch_encoded(
    crawl: Crawl,
    server: MockServer,
    wire: bytes,
    encoding: str,
    settings: dict[str, object] | None = None,
) -> CrawlResult:
    server.httpd.routes["/encoded"] = body(
        wire, "image/jpeg", **{"Content-Encoding": encoding, "Last-Modified": LAST_MODIFIED}
    )
    return await crawl([{"images": [f"{server.url}/encoded"]}], settings)


@pytest.mark.parametrize(
    ("encoding", "wire", "plain"),
    [
        ("gzip", gzip.compress(BIG_JPEG), BIG_JPEG),
        ("x-gzip", gzip.compress(BIG_JPEG), BIG_JPEG),
        ("gzip", members(BIG_JPEG, 2), BIG_JPEG),
        ("gzip", members(BIG_JPEG, 7), BIG_JPEG),
        (
            "gzip",
            gzip.compress(media.JPEG)
            + gzip.compress(b"")
            + members(BIG_JPEG[len(media.JPEG) :], 3),
            BIG_JPEG,
        ),
        ("deflate", zlib.compress(BIG_JPEG), BIG_JPEG),
        ("deflate", raw_deflate(BIG_JPEG), BIG_JPEG),
        ("deflate", raw_deflate(media.JPEG), media.JPEG),
    ],
    ids=[
        "gzip",
        "x-gzip",
        "gzip-2-members",
        "gzip-7-members",
        "gzip-with-empty-member",
        "zlib-deflate",
        "raw-deflate",
        "raw-deflate-small",
    ],
)
@pytest_twisted.ensureDeferred
async def test_compressed_body_is_stored_decoded(
    crawl: Crawl, server: MockServer, encoding: str, wire: bytes, plain: bytes
) -> None:
    result = await fetch_encoded(crawl, server, wire, encoding)
    record = result.items[0]["media"][0]
    assert (record["status"], record["reason"]) == ("downloaded", None), record
    assert record["size"] == len(plain)
    assert record["sha256"] == hashlib.sha256(plain).hexdigest()
    assert stored_files(crawl.store) == {record["path"]: plain}
    assert leftovers(crawl.store) == []
    assert result.warnings == []


@pytest_twisted.ensureDeferred
async def test_bytes_after_a_gzip_body_are_not_part_of_it(crawl: Crawl, server: MockServer) -> None:
    result = await fetch_encoded(crawl, server, gzip.compress(BIG_JPEG) + b"\x00" * 64, "gzip")
    record = result.items[0]["media"][0]
    assert record["status"] == "downloaded"
    assert stored_files(crawl.store) == {record["path"]: BIG_JPEG}


@pytest.mark.parametrize(
    ("encoding", "wire"),
    [
        ("gzip", gzip.compress(BIG_JPEG)[:-100]),
        ("gzip", members(BIG_JPEG, 2)[:-30]),
        ("deflate", raw_deflate(BIG_JPEG)[:-50]),
    ],
    ids=["gzip-cut", "second-member-cut", "raw-deflate-cut"],
)
@pytest_twisted.ensureDeferred
async def test_cut_compressed_body_is_truncated(
    crawl: Crawl, server: MockServer, encoding: str, wire: bytes
) -> None:
    result = await fetch_encoded(crawl, server, wire, encoding)
    record = result.items[0]["media"][0]
    assert (record["status"], record["reason"]) == ("failed", "truncated"), record
    assert stored_files(crawl.store) == {}
    assert leftovers(crawl.store) == []


@pytest_twisted.ensureDeferred
async def test_unsupported_encoding_is_refused_at_the_headers(
    crawl: Crawl, server: MockServer
) -> None:
    chunk = b"\x1b\x2c" + bytes(8190)
    server.httpd.routes["/br"] = _encoded_stream(chunk, 64, "br")
    result = await crawl([{"images": [f"{server.url}/br"]}])
    record = result.items[0]["media"][0]
    assert (record["status"], record["reason"]) == ("failed", "content-type"), record
    assert "unsupported Content-Encoding br" in result.warnings[0]
    # Refused at the headers: the client hung up long before the 64 chunks were sent.
    assert server.chunks_sent("/br") < 64
    assert stored_files(crawl.store) == {}
    assert leftovers(crawl.store) == []


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "no-length"])
@pytest_twisted.ensureDeferred
async def test_compressed_body_over_the_limit_is_cut_on_the_wire(
    crawl: Crawl, server: MockServer, length: bool
) -> None:
    # Incompressible bytes: the compressed body is as large as the decoded one would be.
    chunk = bytes(range(256)) * 32
    server.httpd.routes["/big-gzip"] = _encoded_stream(chunk, 200, "gzip", length=length)
    limit = 64 * 1024
    result = await crawl([{"images": [f"{server.url}/big-gzip"]}], {"MEDIAPIPE_MAX_SIZE": limit})
    record = result.items[0]["media"][0]
    assert (record["status"], record["reason"]) == ("failed", "too-large"), record
    # 200 chunks of 8 KiB were on offer; the download stopped near the limit (at the headers
    # when the length was declared).
    assert server.chunks_sent("/big-gzip") < 200
    assert stored_files(crawl.store) == {}
    assert leftovers(crawl.store) == []


def _encoded_stream(chunk: bytes, chunks: int, encoding: str, *, length: bool = True) -> Route:
    """:func:`streamed`, with a ``Content-Encoding`` header after the Content-Type."""
    inner = streamed(chunk, chunks, "image/jpeg", length=length, delay=0.02)

    def route(handler: SiteHandler) -> None:
        original = handler.send_header

        def send_header(keyword: str, value: str) -> None:
            original(keyword, value)
            if keyword == "Content-Type":
                original("Content-Encoding", encoding)

        handler.send_header = send_header  # type: ignore[method-assign]
        inner(handler)

    return route
