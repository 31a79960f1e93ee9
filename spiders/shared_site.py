"""A generated site whose pages share their media, for the worker example, its tests and its
benchmark: ``python -m spiders.shared_site --port 8001``.

Page ``/p/<n>.html`` links to a few other pages and shows ``per_page`` of the site's images;
every image is on many pages, so workers that split the pages meet the same sources. The
server counts the requests of every path (``GET /_counts`` answers them as JSON) and can hold
each media answer back, as a server across the internet would.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import threading
import time
from collections import Counter
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from PIL import Image

from spiders.site_server import ServedInThread

if TYPE_CHECKING:
    from collections.abc import Iterator

# A fixed Last-Modified: file names (which use it) are the same for every worker and run.
LAST_MODIFIED = formatdate(1735689600, usegmt=True)


def page_links(page: int, pages: int) -> list[int]:
    return sorted({(page + 1) % pages, (page * 7 + 3) % pages, (page * 13 + 5) % pages})


def page_media(page: int, per_page: int, media: int) -> list[int]:
    # A fixed spread over the images: neighbouring pages share some, every image is on many.
    return sorted({(page * 31 + slot * 17) % media for slot in range(per_page)})


def media_bytes(number: int) -> bytes:
    """A small PNG of its own colour and size: every image has different bytes."""
    image = Image.new("RGB", (8 + number % 24, 8 + number // 24 % 24), _colour(number))
    # The number itself in the first pixel: no two images alike, however many.
    image.putpixel((0, 0), (number & 255, number >> 8 & 255, number >> 16 & 255))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _colour(number: int) -> tuple[int, int, int]:
    return (number * 37 % 256, number * 91 % 256, number * 53 % 256)


class SharedSite(ServedInThread):
    """The site on 127.0.0.1, in a thread of the calling process."""

    httpd: _Server

    def __init__(
        self,
        pages: int = 300,
        media: int = 120,
        per_page: int = 6,
        latency: float = 0.0,
        port: int = 0,
        page_latency: float = 0.0,
    ) -> None:
        self.pages, self.media, self.per_page = pages, media, per_page
        self.latency, self.page_latency = latency, page_latency
        self._media = [media_bytes(number) for number in range(media)]
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        super().__init__(_Server(self, port))

    def media_path(self, number: int) -> str:
        return f"/m/{number}.png"

    def media_of(self, path: str) -> bytes:
        return self._media[int(path.removeprefix("/m/").removesuffix(".png"))]

    def page_html(self, page: int) -> bytes:
        links = "".join(
            f'<a href="/p/{link}.html">page {link}</a> ' for link in page_links(page, self.pages)
        )
        images = "".join(
            f'<img src="{self.media_path(number)}" alt="image {number}">'
            for number in page_media(page, self.per_page, self.media)
        )
        return (
            f"<!doctype html><html><head><title>Page {page}</title></head>"
            f"<body><h1>Page {page}</h1>{images}<nav>{links}</nav></body></html>"
        ).encode()

    def count(self, path: str) -> None:
        with self._lock:
            self.counts[path] += 1

    @contextlib.contextmanager
    def answering(self, path: str) -> Iterator[None]:
        """Around the making of one media answer, until it is sent or has failed: the
        benchmark times them."""
        yield

    def media_counts(self) -> dict[str, int]:
        with self._lock:
            return {path: n for path, n in self.counts.items() if path.startswith("/m/")}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    # Headers and body leave in two writes: with Nagle's algorithm on, the body of every answer
    # on a kept-alive connection waited for the client's delayed ACK (measured: 40 ms more per
    # request, 142 ms for a 100 ms answer).
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        site = self.server.site
        path = urlsplit(self.path).path
        site.count(path)
        if path == "/_counts":
            with site._lock:
                self._send(200, json.dumps(site.counts).encode(), "application/json")
            return
        if path == "/" or path.startswith("/p/"):
            number = path.removeprefix("/p/").removesuffix(".html") if path != "/" else "0"
            if number.isdigit() and int(number) < site.pages:
                if site.page_latency:
                    time.sleep(site.page_latency)
                self._send(200, site.page_html(int(number)), "text/html; charset=utf-8")
                return
        elif path.startswith("/m/"):
            number = path.removeprefix("/m/").removesuffix(".png")
            if number.isdigit() and int(number) < site.media:
                with site.answering(path):
                    if site.latency:
                        time.sleep(site.latency)
                    self._send(200, site.media_of(path), "image/png")
                return
        self._send(404, b"not found", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Last-Modified", LAST_MODIFIED)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, site: SharedSite, port: int) -> None:
        self.site = site
        super().__init__(("127.0.0.1", port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up (a worker stopped or killed) is no error of the site's.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--media", type=int, default=120)
    parser.add_argument("--per-page", type=int, default=6)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per media answer")
    options = parser.parse_args(argv)
    site = SharedSite(options.pages, options.media, options.per_page, options.latency, options.port)
    print(f"Serving {options.pages} pages sharing {options.media} images at {site.url}/")
    try:
        site.httpd.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        site.httpd.server_close()


if __name__ == "__main__":
    main()
