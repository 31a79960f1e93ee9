"""Edge-case routes of the test server (127.0.0.1 only), on top of the demo's site server."""

from __future__ import annotations

import contextlib
import gzip
import threading
import time
from email.utils import formatdate
from typing import TYPE_CHECKING

from spiders.site_server import Route, SiteHandler, SiteServer
from tests import media

if TYPE_CHECKING:
    from collections.abc import Callable

LAST_MODIFIED = "Wed, 01 Jan 2020 00:00:00 GMT"
LAST_MODIFIED_EPOCH = 1577836800
DATE_ONLY = "Sun, 06 Nov 1994 08:49:37 GMT"
DATE_ONLY_EPOCH = 784111777

BIG_BODY = 64 * 1024  # bytes of the oversized and refused bodies
SLOW_SECONDS = 3.0


def body(payload: bytes, content_type: str | None, **headers: str) -> Route:
    """A 200 answer; ``Last-Modified`` is LAST_MODIFIED unless given, so names are known."""
    headers = {"Last-Modified": LAST_MODIFIED, **headers}

    def route(handler: SiteHandler) -> None:
        handler.send_body(200, payload, content_type, headers)

    return route


def status(code: int, payload: bytes = media.HTML, content_type: str = "text/html") -> Route:
    def route(handler: SiteHandler) -> None:
        handler.send_body(code, payload, content_type)

    return route


def redirect(location: str, code: int = 302) -> Route:
    def route(handler: SiteHandler) -> None:
        handler.send_body(code, b"<html>moved</html>", "text/html", {"Location": location})

    return route


def streamed(
    payload_chunk: bytes, chunks: int, content_type: str, *, length: bool, delay: float = 0.01
) -> Route:
    """A body sent in pieces; records how many pieces the client took before it hung up."""

    def route(handler: SiteHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        if length:
            handler.send_header("Content-Length", str(len(payload_chunk) * chunks))
        else:
            handler.send_header("Connection", "close")
        handler.end_headers()
        sent = 0
        try:
            for _ in range(chunks):
                handler.wfile.write(payload_chunk)
                handler.wfile.flush()
                sent += 1
                if delay:
                    time.sleep(delay)
        except OSError:
            pass
        finally:
            handler.server.chunks_sent[handler.route_path] = sent  # type: ignore[attr-defined]
            handler.close_connection = True

    return route


def truncated(payload: bytes, declared: int) -> Route:
    def route(handler: SiteHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        handler.send_header("Content-Length", str(declared))
        handler.end_headers()
        handler.wfile.write(payload)
        handler.wfile.flush()
        handler.close_connection = True

    return route


def slow(seconds: float) -> Route:
    def route(handler: SiteHandler) -> None:
        time.sleep(seconds)
        with contextlib.suppress(OSError):
            handler.send_body(200, media.PNG, "image/png")

    return route


def flaky(failures: int, code: int = 503) -> Route:
    """Fails ``failures`` times, then serves a PNG."""
    lock = threading.Lock()
    state = {"calls": 0}

    def route(handler: SiteHandler) -> None:
        with lock:
            state["calls"] += 1
            call = state["calls"]
        if call <= failures:
            handler.send_body(code, b"busy", "text/plain")
        else:
            handler.send_body(200, media.PNG, "image/png")

    return route


def echo_request_headers(handler: SiteHandler) -> None:
    handler.server.seen_headers.append(dict(handler.headers))  # type: ignore[attr-defined]
    handler.send_body(200, media.PNG, "image/png")


def gzipped(handler: SiteHandler) -> None:
    handler.send_body(200, gzip.compress(media.PNG), "image/png", {"Content-Encoding": "gzip"})


def _date_header(value: str) -> Route:
    def route(handler: SiteHandler) -> None:
        handler.send_response_only(200)
        handler.send_header("Server", "test")
        handler.send_header("Date", value)
        handler.send_header("Content-Type", "image/png")
        handler.send_header("Content-Length", str(len(media.PNG)))
        handler.end_headers()
        handler.wfile.write(media.PNG)

    return route


class Versioned:
    """A file that changes when a test says so, served with validators: ``ETag`` and
    ``Last-Modified`` (either can be left out), and ``304 Not Modified`` to a request whose
    ``If-None-Match`` or ``If-Modified-Since`` still matches."""

    def __init__(self, payload: bytes, *, etag: bool = True, last_modified: bool = True) -> None:
        self.payload = payload
        self.version = 1
        self.etag = etag
        self.last_modified = last_modified
        self.not_modified_type = "image/png"
        self.conditions: list[dict[str, str]] = []

    def change(self, payload: bytes) -> None:
        self.payload = payload
        self.version += 1

    def validators(self) -> dict[str, str]:
        headers = {}
        if self.etag:
            headers["ETag"] = f'"v{self.version}"'
        if self.last_modified:
            headers["Last-Modified"] = http_date(LAST_MODIFIED_EPOCH + self.version * 86400)
        return headers

    def __call__(self, handler: SiteHandler) -> None:
        asked = {
            name: handler.headers[name]
            for name in ("If-None-Match", "If-Modified-Since")
            if name in handler.headers
        }
        self.conditions.append(asked)
        validators = self.validators()
        if asked and all(
            validators.get(sent) == asked[asked_name]
            for asked_name, sent in (
                ("If-None-Match", "ETag"),
                ("If-Modified-Since", "Last-Modified"),
            )
            if asked_name in asked
        ):
            handler.send_response_only(304)
            handler.send_header("Content-Type", self.not_modified_type)
            for name, value in validators.items():
                handler.send_header(name, value)
            handler.end_headers()
            return
        handler.send_body(200, self.payload, "image/png", validators)


ROUTES: dict[str, Callable[..., None]] = {
    "/img/png": body(media.PNG, "image/png"),
    "/img/jpeg": body(media.JPEG, "image/jpeg"),
    "/img/gif": body(media.GIF, "image/gif"),
    "/img/webp": body(media.WEBP, "image/webp"),
    "/img/svg": body(media.SVG, "image/svg+xml"),
    "/img/png-charset": body(media.PNG, "image/png; charset=binary"),
    "/img/PNG-upper.PNG": body(media.PNG, "IMAGE/PNG"),
    "/img/notes.txt": body(media.PNG, "image/png"),
    "/img/octet-png": body(media.PNG, "application/octet-stream"),
    "/img/binary-octet-jpeg": body(media.JPEG, "binary/octet-stream"),
    "/img/no-type-gif": body(media.GIF, None),
    "/img/octet-mp4": body(media.MP4, "application/octet-stream"),
    "/img/octet-noise": body(media.NOISE, "application/octet-stream"),
    "/img/jpeg-as-png": body(media.JPEG, "image/png"),
    "/img/html-as-png": body(media.HTML, "image/png"),
    "/img/json-as-png": body(media.JSON, "image/png"),
    "/img/noise-as-png": body(media.NOISE, "image/png"),
    "/img/page": body(media.HTML, "text/html; charset=utf-8"),
    "/img/json": body(media.JSON, "application/json"),
    "/img/empty": body(b"", "image/png"),
    "/img/last-modified": body(media.PNG, "image/png", **{"Last-Modified": LAST_MODIFIED}),
    "/img/date-only": _date_header(DATE_ONLY),
    "/img/rfc850": body(
        media.PNG, "image/png", **{"Last-Modified": "Sunday, 06-Nov-94 08:49:37 GMT"}
    ),
    "/img/asctime": body(media.PNG, "image/png", **{"Last-Modified": "Sun Nov  6 08:49:37 1994"}),
    "/img/gzip": gzipped,
    "/audio/wav": body(media.WAV, "audio/wav"),
    "/audio/unknown-bytes": body(media.NOISE, "audio/x-unheard-of"),
    "/video/mp4-unknown-bytes.mp4": body(media.NOISE, "video/mp4"),
    "/video/mp4": body(media.MP4, "video/mp4"),
    "/status/404": status(404),
    "/status/500": status(500),
    "/status/403-image": status(403, media.PNG, "image/png"),
    "/status/304": lambda h: h.send_body(304, b"", "image/png"),
    "/status/201": lambda h: h.send_body(201, media.PNG, "image/png"),
    "/status/206": lambda h: h.send_body(206, media.PNG, "image/png"),
    "/redirect/png": redirect("/img/png"),
    "/redirect/twice": redirect("/redirect/png", 301),
    "/redirect/to-404": redirect("/status/404"),
    "/big/declared": streamed(
        b"\x89PNG\r\n\x1a\n" + bytes(8184), BIG_BODY // 8192, "image/png", length=True
    ),
    "/big/chunked": streamed(
        media.PNG + bytes(8192 - len(media.PNG)), BIG_BODY // 8192, "image/png", length=False
    ),
    "/refused/html-body": streamed(b"<html>" + b"x" * 8186, 200, "text/html", length=True),
    "/truncated": truncated(media.PNG[:20], len(media.PNG) + 100),
    "/slow": slow(SLOW_SECONDS),
    "/echo": echo_request_headers,
}


class MockServer(SiteServer):
    """The site server with :data:`ROUTES`; fresh per-route counters per test via reset()."""

    def __init__(self) -> None:
        routes = dict(ROUTES)
        routes["/flaky/503-once"] = flaky(1)
        # Fresh per server: tests change them.
        self.versioned = {
            "/versioned/both": Versioned(media.PNG),
            "/versioned/etag": Versioned(media.PNG, last_modified=False),
            "/versioned/last-modified": Versioned(media.PNG, etag=False),
            "/versioned/none": Versioned(media.PNG, etag=False, last_modified=False),
        }
        routes.update(self.versioned)
        super().__init__(routes=routes, last_modified=LAST_MODIFIED_EPOCH)
        self.httpd.chunks_sent = {}  # type: ignore[attr-defined]
        self.httpd.seen_headers = []  # type: ignore[attr-defined]

    def count(self, path: str) -> int:
        return self.requested.count(path)

    def reset(self) -> None:
        self.requested.clear()
        self.httpd.chunks_sent.clear()  # type: ignore[attr-defined]
        self.httpd.seen_headers.clear()  # type: ignore[attr-defined]

    @property
    def seen_headers(self) -> list[dict[str, str]]:
        return self.httpd.seen_headers  # type: ignore[attr-defined]

    def chunks_sent(self, path: str, timeout: float = 10.0) -> int:
        """How many chunks a streamed route wrote before the client hung up (waits for it)."""
        deadline = time.monotonic() + timeout
        while path not in self.httpd.chunks_sent:  # type: ignore[attr-defined]
            if time.monotonic() > deadline:
                raise AssertionError(f"route {path} did not finish within {timeout} s")
            time.sleep(0.01)
        return int(self.httpd.chunks_sent[path])  # type: ignore[attr-defined]


def http_date(epoch: float) -> str:
    return formatdate(epoch, usegmt=True)
