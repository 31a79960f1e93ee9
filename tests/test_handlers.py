"""The streaming download handlers: the connected address is checked before a request byte is
sent (contract §7.1), and both handlers give the same reason for the same hostile answer (§9).

The Twisted handler runs in-process; the aiohttp one, which Scrapy uses without a Twisted
reactor, runs through ``copy_media`` inside ``asyncio.run`` in a subprocess.
"""

from __future__ import annotations

import json
import socket
import textwrap
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
import pytest_twisted
from scrapy import Request, Spider, signals
from scrapy.utils.test import get_crawler

from mediapipe.safety import AddressPolicy, IPAddress, parse_address
from tests import media
from tests.faultserver import HOSTILE, raw
from tests.mockserver import LAST_MODIFIED, MockServer
from tests.scripts import run_python
from tests.storecheck import stored_files

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from scrapy.http import Response

    from tests.conftest import Crawl

PUBLIC = "93.184.216.34"  # what the pre-check is told a name resolves to
RULE_ON = {"MEDIAPIPE_ALLOW_PRIVATE_NETWORKS": False}
PAGE = b"<html><body>a page</body></html>"


class RecordingServer:
    """HTTP/1.1 on 127.0.0.1 that keeps every byte it receives, per connection, and answers
    each request (a PNG, or a page for ``/page``) on a kept-alive connection."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.connections: list[bytearray] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> RecordingServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._listener.close()

    @property
    def received(self) -> bytes:
        with self._lock:
            return b"".join(bytes(c) for c in self.connections)

    def request_lines(self) -> list[bytes]:
        return [line for line in self.received.split(b"\r\n") if line.startswith(b"GET ")]

    def settle(self) -> None:
        """Give the server thread time to take bytes already on the wire."""
        time.sleep(0.3)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            buffer = bytearray()
            with self._lock:
                self.connections.append(buffer)
            threading.Thread(target=self._serve, args=(conn, buffer), daemon=True).start()

    def _serve(self, conn: socket.socket, buffer: bytearray) -> None:
        pending = b""
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                with self._lock:
                    buffer.extend(data)
                pending += data
                while b"\r\n\r\n" in pending:
                    head, _, pending = pending.partition(b"\r\n\r\n")
                    page = head.split(b" ", 2)[1] == b"/page"
                    payload, kind = (PAGE, b"text/html") if page else (media.PNG, b"image/png")
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
                        b"Last-Modified: %s\r\n\r\n%s"
                        % (kind, len(payload), LAST_MODIFIED.encode(), payload)
                    )


@pytest.fixture
def recorder() -> Iterator[RecordingServer]:
    with RecordingServer() as running:
        yield running


async def _public(self: AddressPolicy, host: str, port: int) -> tuple[IPAddress, ...]:
    address = parse_address(PUBLIC)
    assert address is not None
    return (address,)


@pytest.fixture
def rebinding(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pre-check's lookup says every name is public; connections still reach 127.0.0.1."""
    monkeypatch.setattr(AddressPolicy, "_resolve", _public)


# -- the Twisted handler -------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest_twisted.ensureDeferred
async def test_rebinding_host_gets_no_request_byte_on_twisted(
    crawl: Crawl, recorder: RecordingServer, rebinding: None, scheme: str
) -> None:
    # Over https not even the TLS handshake starts: the address is checked first.
    source = f"{scheme}://localhost:{recorder.port}/a.png"
    result = await crawl([{"images": [source]}], RULE_ON)
    recorder.settle()
    [record] = result.items[0]["media"]
    assert (record["status"], record["reason"]) == ("failed", "unsafe-url")
    assert result.items[0]["images"] == [source]
    assert len(recorder.connections) >= 1  # the name really led to 127.0.0.1 ...
    assert recorder.received == b""  # ... which got not one byte
    assert result.stat("mediapipe/failed/unsafe-url") == 1
    assert stored_files(result.store) == {}
    [warning] = result.warnings
    assert "connected to 127.0.0.1" in warning


@pytest_twisted.ensureDeferred
async def test_allowed_host_still_downloads_on_twisted(
    crawl: Crawl, recorder: RecordingServer, rebinding: None
) -> None:
    source = f"http://localhost:{recorder.port}/a.png"
    result = await crawl(
        [{"images": [source]}], {**RULE_ON, "MEDIAPIPE_ALLOWED_HOSTS": ["localhost"]}
    )
    [record] = result.items[0]["media"]
    assert record["status"] == "downloaded"
    assert (result.store / record["path"]).read_bytes() == media.PNG
    assert recorder.request_lines() == [b"GET /a.png HTTP/1.1"]


@pytest_twisted.ensureDeferred
async def test_through_a_proxy_the_target_is_checked_by_name_on_twisted(
    crawl: Crawl, server: MockServer, rebinding: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("http_proxy", server.url)
    result = await crawl([{"images": ["http://media.example.invalid/img/png"]}], RULE_ON)
    [record] = result.items[0]["media"]
    assert record["status"] == "downloaded"
    assert (result.store / record["path"]).read_bytes() == media.PNG
    assert server.count("/img/png") == 1


class PageThenMediaSpider(Spider):
    """Fetches a page of a host, then yields an item with a media source on the same host."""

    name = "page_then_media"

    def __init__(self, page: str, source: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.page, self.source = page, source
        self.page_status: int | None = None

    async def start(self) -> AsyncIterator[Request]:
        yield Request(self.page, callback=self.parse_page)

    def parse_page(self, response: Response) -> Iterator[dict[str, Any]]:
        self.page_status = response.status
        assert response.body == PAGE
        yield {"images": [self.source]}


@pytest_twisted.ensureDeferred
async def test_page_request_to_the_host_is_unaffected_on_twisted(
    crawl: Crawl, recorder: RecordingServer, rebinding: None
) -> None:
    page = f"http://localhost:{recorder.port}/page"
    source = f"http://localhost:{recorder.port}/a.png"
    crawler = get_crawler(PageThenMediaSpider, crawl.settings(RULE_ON))
    scraped: list[Any] = []

    def collect(item: Any) -> None:
        scraped.append(item)

    crawler.signals.connect(collect, signal=signals.item_scraped)
    await crawler.crawl(page=page, source=source)
    recorder.settle()
    assert isinstance(crawler.spider, PageThenMediaSpider)
    assert crawler.spider.page_status == 200
    [record] = scraped[0]["media"]
    assert (record["status"], record["reason"]) == ("failed", "unsafe-url")
    # The page's kept-alive connection was not lent to the media request.
    assert recorder.request_lines() == [b"GET /page HTTP/1.1"]
    assert len(recorder.connections) == 2


# -- the aiohttp handler, via copy_media in a plain asyncio.run -----------------------------------

SCRIPT = """\
import asyncio
import ipaddress
import json
import sys

from mediapipe import copy_media
from mediapipe.safety import AddressPolicy

SOURCES, SETTINGS, REBIND, PROXY = json.loads(sys.argv[1])


async def public(self, host, port):
    return (ipaddress.ip_address("{public}"),)


if REBIND:
    AddressPolicy._resolve = public
stored = copy_media(SOURCES, settings=SETTINGS, proxy=PROXY, return_target=True)
print(json.dumps(asyncio.run(stored)))
"""


def run_copy_media(
    tmp_path: Path,
    sources: list[str],
    settings: dict[str, Any],
    *,
    rebind: bool = False,
    proxy: str | None = None,
) -> tuple[list[Any], dict[str, str]]:
    """``copy_media`` in a fresh interpreter: its result, and each failed source's reason."""
    process = run_python(
        tmp_path,
        "copy_media_script.py",
        textwrap.dedent(SCRIPT).replace("{public}", PUBLIC),
        json.dumps([sources, settings, rebind, proxy]),
    )
    assert "Traceback" not in process.stderr, process.stderr
    reasons = {}
    for line in process.stderr.splitlines():
        if line.startswith("WARNING: Media (failed: "):
            reason, _, rest = line.removeprefix("WARNING: Media (failed: ").partition("): ")
            reasons[rest.partition(" (")[0]] = reason
    return json.loads(process.stdout.splitlines()[-1]), reasons


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_rebinding_host_gets_no_request_byte_on_aiohttp(
    tmp_path: Path, recorder: RecordingServer, scheme: str
) -> None:
    source = f"{scheme}://localhost:{recorder.port}/a.png"
    result, reasons = run_copy_media(tmp_path, [source], RULE_ON, rebind=True)
    recorder.settle()
    assert result == [[source, None]]
    assert reasons == {source: "unsafe-url"}
    # aiohttp's connector resolves the name itself, to 127.0.0.1, and keeps only public
    # addresses: it does not even connect.
    assert recorder.connections == []
    assert recorder.received == b""
    assert stored_files(tmp_path / "generated_images") == {}


def test_allowed_host_still_downloads_on_aiohttp(tmp_path: Path, recorder: RecordingServer) -> None:
    source = f"http://localhost:{recorder.port}/a.png"
    settings = {**RULE_ON, "MEDIAPIPE_ALLOWED_HOSTS": ["localhost"]}
    [(url, path)], reasons = run_copy_media(tmp_path, [source], settings, rebind=True)
    assert reasons == {}
    assert url.startswith("/media/")
    assert (tmp_path / "generated_images" / path).read_bytes() == media.PNG
    assert recorder.request_lines() == [b"GET /a.png HTTP/1.1"]


def test_through_a_proxy_the_target_is_checked_by_name_on_aiohttp(
    tmp_path: Path, server: MockServer
) -> None:
    # The connection reaches the proxy on 127.0.0.1, not the target: only the target's name
    # (here looked up as public) is checked.
    source = "http://media.example.invalid/img/png"
    [(url, path)], reasons = run_copy_media(
        tmp_path, [source], RULE_ON, rebind=True, proxy=server.url
    )
    assert reasons == {}
    assert url.startswith("/media/")
    assert (tmp_path / "generated_images" / path).read_bytes() == media.PNG
    assert server.count("/img/png") == 1


# -- one reason for one hostile answer, on both handlers -----------------------------------------

# Decided once for both handlers (see the README's "Hostile responses").
HOSTILE_REASONS = {
    "huge-content-length": "too-large",
    "long-header-line": "connection",
    "many-header-lines": "connection",
    "length-and-chunked": "connection",
    "twelve-digit-status": "connection",
}
NO_RETRY = {"MEDIAPIPE_ALLOW_PRIVATE_NETWORKS": True, "MEDIAPIPE_RETRY_TIMES": 0}


@pytest.fixture(scope="module")
def hostile_server() -> Iterator[MockServer]:
    with MockServer() as running:
        for name, response in HOSTILE.items():
            running.httpd.routes[f"/hostile/{name}"] = raw(response)
        yield running


@pytest.fixture(scope="module")
def aiohttp_reasons(
    hostile_server: MockServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """Every hostile route through the aiohttp handler, in one copy_media call."""
    sources = [f"{hostile_server.url}/hostile/{name}" for name in HOSTILE]
    folder = tmp_path_factory.mktemp("aiohttp")
    result, reasons = run_copy_media(folder, sources, NO_RETRY)
    assert [path for _, path in result] == [None] * len(sources)
    assert stored_files(folder / "generated_images") == {}
    return {source.rpartition("/")[2]: reason for source, reason in reasons.items()}


def test_every_hostile_route_has_a_decided_reason() -> None:
    assert set(HOSTILE_REASONS) == set(HOSTILE)


@pytest.mark.parametrize("name", sorted(HOSTILE))
@pytest_twisted.ensureDeferred
async def test_hostile_answer_gets_one_reason_on_both_handlers(
    crawl: Crawl, hostile_server: MockServer, aiohttp_reasons: dict[str, str], name: str
) -> None:
    source = f"{hostile_server.url}/hostile/{name}"
    result = await crawl([{"images": [source]}], NO_RETRY)
    [record] = result.items[0]["media"]
    assert record["status"] == "failed"
    assert stored_files(result.store) == {}
    assert {"twisted": record["reason"], "aiohttp": aiohttp_reasons.get(name)} == {
        "twisted": HOSTILE_REASONS[name],
        "aiohttp": HOSTILE_REASONS[name],
    }
