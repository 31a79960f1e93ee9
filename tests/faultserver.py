"""Fault routes for the test server (127.0.0.1 only): broken connections, stalls, redirect
loops, redirects to loopback names, compression and image bombs.

Each factory returns a route, a function of the :class:`~spiders.site_server.SiteHandler`, to
be added to a running server with ``server.httpd.routes[path] = route``.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import struct
import time
import zlib
from typing import TYPE_CHECKING

from tests import media
from tests.mockserver import LAST_MODIFIED, redirect

if TYPE_CHECKING:
    from spiders.site_server import Route, SiteHandler

GZIP_BOMB_INFLATED = 1 << 30  # 1 GiB of zeros once inflated
BOMB_PIXELS = (50_000, 50_000)


def connection_reset(payload: bytes, declared: int, content_type: str = "image/png") -> Route:
    """Headers with ``Content-Length: declared``, then ``payload``, then a TCP reset (RST)."""

    def route(handler: SiteHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(declared))
        handler.end_headers()
        handler.wfile.write(payload)
        handler.wfile.flush()
        # Give the client time to take the headers and the first bytes before the reset.
        time.sleep(0.2)
        # SO_LINGER on with a zero timeout: close() sends RST instead of FIN.
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.connection.close()
        handler.close_connection = True

    return route


def stall(seconds: float, content_type: str = "image/png") -> Route:
    """Headers and the first bytes of a PNG, then nothing for ``seconds``."""

    def route(handler: SiteHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(media.PNG)))
        handler.end_headers()
        handler.wfile.write(media.PNG[:16])
        handler.wfile.flush()
        time.sleep(seconds)
        with contextlib.suppress(OSError):
            handler.wfile.write(media.PNG[16:])
        handler.close_connection = True

    return route


def redirect_loop(path: str) -> Route:
    """``path`` redirects to itself, forever."""
    return redirect(path)


def redirect_to_localhost(target_path: str) -> Route:
    """A redirect to ``http://localhost:<this server's port><target_path>``."""

    def route(handler: SiteHandler) -> None:
        port = handler.server.server_address[1]
        location = f"http://localhost:{port}{target_path}"
        handler.send_body(302, b"<html>moved</html>", "text/html", {"Location": location})

    return route


@functools.cache
def gzip_bomb_body(inflated: int = GZIP_BOMB_INFLATED) -> bytes:
    """A gzip stream of ``inflated`` zero bytes, compressed in 1 MiB steps (about 1 MB)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    step = bytes(1 << 20)
    parts: list[bytes] = []
    for _ in range(inflated // len(step)):
        parts.append(compressor.compress(step))
    parts.append(compressor.compress(bytes(inflated % len(step))))
    parts.append(compressor.flush())
    return b"".join(parts)


def gzip_bomb(inflated: int = GZIP_BOMB_INFLATED) -> Route:
    """A small gzip body that inflates to ``inflated`` zeros, under ``image/png``."""

    def route(handler: SiteHandler) -> None:
        payload = gzip_bomb_body(inflated)
        headers = {"Content-Encoding": "gzip", "Last-Modified": LAST_MODIFIED}
        with contextlib.suppress(OSError):
            handler.send_body(200, payload, "image/png", headers)

    return route


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_declaring(width: int, height: int) -> bytes:
    """A tiny, well-formed PNG whose IHDR declares ``width`` × ``height`` grey pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


IMAGE_BOMB = png_declaring(*BOMB_PIXELS)


def image_bomb() -> Route:
    """A real PNG of a few dozen bytes that declares 50000 × 50000 pixels."""

    def route(handler: SiteHandler) -> None:
        handler.send_body(200, IMAGE_BOMB, "image/png", {"Last-Modified": LAST_MODIFIED})

    return route


def raw(response: bytes) -> Route:
    """Writes ``response`` (status line, headers and body) byte for byte, then closes."""

    def route(handler: SiteHandler) -> None:
        with contextlib.suppress(OSError):
            handler.wfile.write(response)
            handler.wfile.flush()
        handler.close_connection = True

    return route


def _head(status_line: bytes, *headers: bytes) -> bytes:
    return status_line + b"\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n"


def _chunked(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)


HEADER_FLOOD = 1 << 20  # bytes of response headers in the header routes
PNG_TYPE = b"Content-Type: image/png"

# Responses no honest server sends; each must fail the same way on every download handler.
HOSTILE: dict[str, bytes] = {
    "huge-content-length": _head(
        b"HTTP/1.1 200 OK", PNG_TYPE, b"Content-Length: 99999999999999999999"
    )
    + media.PNG,
    "long-header-line": _head(
        b"HTTP/1.1 200 OK",
        PNG_TYPE,
        b"X-Flood: " + b"a" * HEADER_FLOOD,
        b"Content-Length: %d" % len(media.PNG),
    )
    + media.PNG,
    "many-header-lines": _head(
        b"HTTP/1.1 200 OK",
        PNG_TYPE,
        *(b"X-Flood-%d: %s" % (n, b"a" * 1000) for n in range(HEADER_FLOOD // 1000)),
        b"Content-Length: %d" % len(media.PNG),
    )
    + media.PNG,
    "length-and-chunked": _head(
        b"HTTP/1.1 200 OK",
        PNG_TYPE,
        b"Content-Length: %d" % len(media.PNG),
        b"Transfer-Encoding: chunked",
    )
    + _chunked(media.PNG),
    "twelve-digit-status": _head(
        b"HTTP/1.1 200000000000 OK", PNG_TYPE, b"Content-Length: %d" % len(media.PNG)
    )
    + media.PNG,
}
