"""A small static web server on 127.0.0.1 for the demo crawl and the test suite.

It serves a folder, answers both origin-form (``GET /a.png``) and proxy absolute-form
(``GET http://host/a.png``) requests, and lets callers add routes for special answers.
"""

from __future__ import annotations

import mimetypes
import threading
from collections.abc import Callable
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, Self
from urllib.parse import unquote, urlsplit

SITE_ROOT = Path(__file__).parent / "site"
# A fixed Last-Modified makes the demo's file names the same on every checkout.
SITE_LAST_MODIFIED = 1735689600  # 2025-01-01T00:00:00Z

Route = Callable[["SiteHandler"], None]

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".webp": "image/webp",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".wav": "audio/wav",
    ".webm": "video/webm",
    ".mp4": "video/mp4",
    ".svg": "image/svg+xml",
}


class SiteHandler(BaseHTTPRequestHandler):
    """Serves ``server.root``; a route registered for a path wins over the folder."""

    protocol_version = "HTTP/1.1"
    server: SiteHTTPServer
    # Headers and body leave in two writes: with Nagle's algorithm on, the body of every answer
    # on a kept-alive connection waited for the client's delayed ACK (measured: 40 ms more per
    # request, 142 ms for a 100 ms answer).
    disable_nagle_algorithm = True
    routes: ClassVar[dict[str, Route]] = {}

    @property
    def route_path(self) -> str:
        return unquote(urlsplit(self.path).path) or "/"

    @property
    def query(self) -> str:
        return urlsplit(self.path).query

    def do_GET(self) -> None:
        self.server.record(self.route_path)
        route = self.server.routes.get(self.route_path)
        if route is not None:
            route(self)
            return
        self.serve_file(self.route_path)

    def serve_file(self, path: str) -> None:
        target = (self.server.root / path.lstrip("/")).resolve()
        if path.endswith("/"):
            target = target / "index.html"
        if self.server.root not in target.parents or not target.is_file():
            self.send_body(404, b"<html><body>not found</body></html>", "text/html")
            return
        body = target.read_bytes()
        extra = {"Last-Modified": formatdate(self.server.last_modified, usegmt=True)}
        self.send_body(200, body, content_type_for(target), extra)

    def send_body(
        self,
        status: int,
        body: bytes,
        content_type: str | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the crawl logs every request already."""


def content_type_for(path: Path) -> str:
    if not path.suffix:
        return "application/octet-stream"
    return (
        _TYPES.get(path.suffix)
        or mimetypes.guess_type(path.name)[0]
        or ("application/octet-stream")
    )


class SiteHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 drops connection attempts of a crawl's first burst, which the
    # client then retries only after a second or more.
    request_queue_size = 128

    def __init__(self, root: Path, routes: dict[str, Route], last_modified: int) -> None:
        super().__init__(("127.0.0.1", 0), SiteHandler)
        self.root = root.resolve()
        self.routes = routes
        self.last_modified = last_modified
        self.requested: list[str] = []
        self.connections = 0
        self._lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self.connections += 1
        super().process_request(request, client_address)

    def record(self, path: str) -> None:
        with self._lock:
            self.requested.append(path)


class ServedInThread:
    """An HTTP server of this process, served by a daemon thread; ``url`` is its address."""

    def __init__(self, httpd: ThreadingHTTPServer) -> None:
        self.httpd = httpd
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


class SiteServer(ServedInThread):
    """Serves a folder (and routes) with a :class:`SiteHTTPServer`."""

    httpd: SiteHTTPServer

    def __init__(
        self,
        root: Path = SITE_ROOT,
        routes: dict[str, Route] | None = None,
        last_modified: int = SITE_LAST_MODIFIED,
    ) -> None:
        super().__init__(SiteHTTPServer(root, dict(routes or {}), last_modified))

    @property
    def requested(self) -> list[str]:
        return self.httpd.requested
