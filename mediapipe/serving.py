"""A local HTTP server of a store folder, for ``scrapy media-serve``.

The standard library's ``http.server`` is enough for one person looking at a crawl on their own
machine, and it keeps the add-on free of a web framework it would need for nothing else. It
listens on 127.0.0.1 only, answers GET and HEAD with byte ranges (audio and video seek with
them), and never serves anything outside the store or inside its ``.mediapipe/`` folder.
"""

from __future__ import annotations

import logging
import mimetypes
import re
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from collections.abc import Callable

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
THUMBNAIL_PREFIX = "/thumbnail/"
THUMBNAIL_FOLDER = "thumbnails"
_CHUNK = 64 * 1024
_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)", re.IGNORECASE)
# Types a fresh mimetypes table lacks, or names differently from the sniffer, for the
# extensions file names get (mediapipe.mediatypes).
_TYPES = {
    ".webp": "image/webp",
    ".jxl": "image/jxl",
    ".jp2": "image/jp2",
    ".qoi": "image/qoi",
    ".ico": "image/x-icon",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".m4a": "audio/mp4",
    ".mka": "audio/x-matroska",
    ".aiff": "audio/aiff",
    ".aif": "audio/aiff",
    ".mid": "audio/midi",
    ".midi": "audio/midi",
    ".amr": "audio/amr",
    ".m4v": "video/mp4",
    ".ogv": "video/ogg",
    ".mkv": "video/x-matroska",
    ".3gp": "video/3gpp",
    ".3g2": "video/3gpp2",
    ".flv": "video/x-flv",
    ".wmv": "video/x-ms-wmv",
    ".ts": "video/mp2t",
    ".m2ts": "video/mp2t",
}
_STANDARD_TYPES = mimetypes.MimeTypes()  # the built-in table only: not the machine's files
# Stored files come from untrusted servers: opened on their own (an SVG, say), they must not
# run scripts under this server's origin, which also serves the gallery. Not "sandbox": the
# browser's own page for an opened audio or video file would then load it cross-origin.
_FILE_POLICY = (
    "default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'"
)


class Unsatisfiable(ValueError):
    """A byte range that starts past the end of the file."""


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The first and last byte a ``Range`` header asks for, or None for the whole file.

    One range of bytes is honoured; anything else (several ranges, another unit, a malformed
    value) is ignored, which HTTP allows, and the whole file is sent.
    """
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None or match[1] == match[2] == "":
        return None
    if match[1] == "":
        suffix = int(match[2])
        if suffix == 0 or size == 0:
            raise Unsatisfiable(header)
        return max(0, size - suffix), size - 1
    first = int(match[1])
    last = int(match[2]) if match[2] else size - 1
    if match[2] and last < first:
        return None
    if first >= size:
        raise Unsatisfiable(header)
    return first, min(last, size - 1)


def content_type(path: Path) -> str:
    suffix = path.suffix.lower()
    return (
        _TYPES.get(suffix)
        or _STANDARD_TYPES.guess_type(path.name, strict=False)[0]
        or "application/octet-stream"
    )


def url_path_prefix(url_prefix: str) -> str:
    """The path part of a URL prefix setting (which may be an absolute URL)."""
    path = urlsplit(url_prefix).path or "/"
    return path if path.startswith("/") else "/" + path


class MediaServer(ThreadingHTTPServer):
    """Serves ``store`` under ``url_prefix``, its ``thumbnails/`` folder under
    ``thumbnail_prefix``, and the page ``gallery()`` returns at ``/``."""

    daemon_threads = True

    def __init__(
        self,
        store: Path,
        *,
        url_prefix: str = "/media/",
        thumbnail_prefix: str = THUMBNAIL_PREFIX,
        gallery: Callable[[], bytes] | None = None,
        port: int = 0,
    ) -> None:
        self.store = store.resolve()
        self.gallery = gallery
        # The longest prefix first: "/" as the media prefix must not hide the thumbnails.
        self.folders = sorted(
            [
                (url_path_prefix(url_prefix), self.store),
                (url_path_prefix(thumbnail_prefix), self.store / THUMBNAIL_FOLDER),
            ],
            key=lambda pair: len(pair[0]),
            reverse=True,
        )
        super().__init__((HOST, port), MediaRequestHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"


class MediaRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: MediaServer

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, *, send_body: bool) -> None:
        # The query ("?url=<source>", the provenance of the feed's URLs) is not part of a path.
        try:
            path = unquote(urlsplit(self.path).path, errors="strict")
        except (UnicodeDecodeError, ValueError):
            self._send_text(HTTPStatus.BAD_REQUEST, "bad request", send_body)
            return
        if path == "/":
            if self.server.gallery is None:
                text = "no gallery: start scrapy media-serve with a feed (scrapy media-serve FEED)"
                self._send_text(HTTPStatus.NOT_FOUND, text, send_body)
            else:
                self._send_gallery(send_body)
            return
        for prefix, folder in self.server.folders:
            if path.startswith(prefix):
                self._send_file(folder, path[len(prefix) :], send_body)
                return
        self._send_text(HTTPStatus.NOT_FOUND, "not found", send_body)

    def _send_gallery(self, send_body: bool) -> None:
        assert self.server.gallery is not None
        try:
            page = self.server.gallery()
        except Exception as exc:
            logger.error("cannot build the gallery: %s", exc)
            self._send_text(HTTPStatus.INTERNAL_SERVER_ERROR, f"no gallery: {exc}", send_body)
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if send_body:
            self._write(page)

    def _send_file(self, folder: Path, name: str, send_body: bool) -> None:
        target = self._resolve(folder, name)
        if isinstance(target, HTTPStatus):
            self._send_text(target, target.phrase.lower(), send_body)
            return
        try:
            stream = target.open("rb")
        except OSError:
            self._send_text(HTTPStatus.NOT_FOUND, "not found", send_body)
            return
        with stream:
            size = target.stat().st_size
            try:
                wanted = byte_range(self.headers.get("Range"), size)
            except Unsatisfiable:
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            first, last = wanted if wanted is not None else (0, size - 1)
            self.send_response(HTTPStatus.OK if wanted is None else HTTPStatus.PARTIAL_CONTENT)
            if wanted is not None:
                self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            self.send_header("Content-Type", content_type(target))
            self.send_header("Content-Length", str(last - first + 1))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Last-Modified", formatdate(target.stat().st_mtime, usegmt=True))
            self.send_header("Cache-Control", "no-cache")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Security-Policy", _FILE_POLICY)
            self.end_headers()
            if send_body:
                stream.seek(first)
                self._copy(stream, last - first + 1)

    def _resolve(self, folder: Path, name: str) -> Path | HTTPStatus:
        """The file ``name`` names inside ``folder``, or why it is refused."""
        parts = PurePosixPath(name).parts
        if name.startswith("/") or "\x00" in name or ".." in parts:
            return HTTPStatus.FORBIDDEN
        if not parts or any(part.startswith(".") for part in parts):
            return HTTPStatus.NOT_FOUND  # a folder, or the store's index and temporary files
        target = (folder / name).resolve()
        store = self.server.store
        if not (target.is_relative_to(folder.resolve()) and target.is_relative_to(store)):
            return HTTPStatus.FORBIDDEN  # a symbolic link that leads out
        if not target.is_file():
            return HTTPStatus.NOT_FOUND
        return target

    def _copy(self, stream: BinaryIO, length: int) -> None:
        while length > 0:
            chunk = stream.read(min(_CHUNK, length))
            if not chunk:
                break
            if not self._write(chunk):
                return
            length -= len(chunk)

    def _write(self, data: bytes) -> bool:
        try:
            self.wfile.write(data)
        except ConnectionError:
            # A media element that has what it needs hangs up mid-file: not an error.
            self.close_connection = True
            return False
        return True

    def _send_text(self, status: HTTPStatus, text: str, send_body: bool) -> None:
        body = (text + "\n").encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self._write(body)

    def log_message(self, format: str, *args: object) -> None:
        logger.info("%s " + format, self.address_string(), *args)
