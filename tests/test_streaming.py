"""Media bodies stream to disk: no whole body is ever held in memory (contract §7.5)."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import pytest_twisted

from tests.mockserver import streamed

if TYPE_CHECKING:
    from tests.conftest import Crawl
    from tests.mockserver import MockServer

BODY = 48 * 1024 * 1024
CHUNK = (
    b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
    + bytes(range(256)) * 255
    + bytes(65536 - 24 - 256 * 255)
)
# Far below the body: the spool may queue 4 MiB for the disk, a crawl needs about 3 MiB more.
MEMORY_LIMIT = 12 * 1024 * 1024
SCRAPY_DEFAULT_HANDLER = "scrapy.core.downloader.handlers.http11.HTTP11DownloadHandler"


def expected_sha256() -> str:
    digest = hashlib.sha256()
    for _ in range(BODY // len(CHUNK)):
        digest.update(CHUNK)
    return digest.hexdigest()


async def peak_memory_of_big_download(
    crawl: Crawl, server: MockServer, settings: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    server.httpd.routes["/huge.mp4"] = streamed(
        CHUNK, BODY // len(CHUNK), "video/mp4", length=True, delay=0
    )
    # A first crawl pays the one-time costs (imports, caches), which are not what is measured.
    await crawl([{"images": [f"{server.url}/img/png"]}], settings)
    tracemalloc.start()
    try:
        result = await crawl(
            [{"images": [f"{server.url}/huge.mp4"]}], {"MEDIAPIPE_MAX_SIZE": 0, **settings}
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, result.items[0]["media"][0]


@pytest_twisted.ensureDeferred
async def test_big_body_is_never_held_in_memory(crawl: Crawl, server: MockServer) -> None:
    peak, record = await peak_memory_of_big_download(crawl, server, {})
    assert record["status"] == "downloaded"
    assert record["size"] == BODY
    assert record["sha256"] == expected_sha256()
    assert peak < MEMORY_LIMIT, f"peak {peak / 2**20:.1f} MiB for a {BODY / 2**20:.0f} MiB body"


@pytest_twisted.ensureDeferred
async def test_the_memory_check_catches_a_buffering_handler(
    crawl: Crawl, server: MockServer
) -> None:
    """Scrapy's own handler buffers the body: the same measure must see it."""
    handlers = {"http": SCRAPY_DEFAULT_HANDLER, "https": SCRAPY_DEFAULT_HANDLER}
    peak, record = await peak_memory_of_big_download(crawl, server, {"DOWNLOAD_HANDLERS": handlers})
    assert record["sha256"] == expected_sha256()  # same contract, only the memory differs
    assert peak > BODY


@pytest_twisted.ensureDeferred
async def test_other_downloads_go_on_while_a_big_body_is_written(
    crawl: Crawl, server: MockServer
) -> None:
    server.httpd.routes["/huge.mp4"] = streamed(
        CHUNK, BODY // len(CHUNK), "video/mp4", length=True, delay=0
    )
    small = [f"{server.url}/img/png?{n}" for n in range(40)]
    result = await crawl(
        [{"images": [f"{server.url}/huge.mp4", *small]}], {"MEDIAPIPE_MAX_SIZE": 0}
    )
    statuses = [r["status"] for r in result.items[0]["media"]]
    assert statuses == ["downloaded"] * 41


SCRIPT = """
import asyncio, json, sys, tracemalloc
from mediapipe import copy_media

url, small, store = sys.argv[1:4]
settings = {"MEDIAPIPE_MAX_SIZE": 0, "MEDIAPIPE_ALLOW_PRIVATE_NETWORKS": True}

async def main():
    await copy_media([small], media_dir=store, settings=settings)
    tracemalloc.start()
    records = await copy_media([url], media_dir=store, settings=settings, return_target=True)
    peak = tracemalloc.get_traced_memory()[1]
    return {"peak": peak, "result": records}

print(json.dumps(asyncio.run(main())))
"""


def test_big_body_streams_without_a_reactor_too(server: MockServer, tmp_path: Path) -> None:
    """copy_media in a plain script runs Scrapy without a reactor, on the aiohttp handler."""
    server.httpd.routes["/huge.mp4"] = streamed(
        CHUNK, BODY // len(CHUNK), "video/mp4", length=True, delay=0
    )
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    run = subprocess.run(
        [
            sys.executable,
            str(script),
            f"{server.url}/huge.mp4",
            f"{server.url}/img/png",
            str(tmp_path / "store"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
        check=False,
    )
    assert run.returncode == 0, run.stderr
    output = json.loads(run.stdout)
    ((url, path),) = output["result"]
    assert url.startswith("/media/")
    assert hashlib.sha256((tmp_path / "store" / path).read_bytes()).hexdigest() == expected_sha256()
    assert output["peak"] < MEMORY_LIMIT, output["peak"] / 2**20


@pytest.mark.parametrize(("per_host", "sources"), [(8, 120), (2, 30)])
@pytest_twisted.ensureDeferred
async def test_connections_are_reused(
    crawl: Crawl, server: MockServer, per_host: int, sources: int
) -> None:
    items = [
        {"images": [f"{server.url}/img/png?{item}-{n}" for n in range(10)]}
        for item in range(sources // 10)
    ]
    result = await crawl(items, {"CONCURRENT_REQUESTS_PER_DOMAIN": per_host})
    assert result.stat("mediapipe/status/downloaded") == sources
    # The spider's own data: request opens no connection to this server.
    assert server.httpd.connections <= per_host


@pytest_twisted.ensureDeferred
async def test_large_data_uri_is_decoded_in_pieces(crawl: Crawl, server: MockServer) -> None:
    payload = CHUNK * (BODY // len(CHUNK) // 2)  # 24 MiB of MP4
    source = "data:video/mp4;base64," + base64.b64encode(payload).decode()
    await crawl([{"images": [f"{server.url}/img/png"]}])  # one-time costs, not measured
    tracemalloc.start()
    try:
        # At INFO: Scrapy's DEBUG line for each scraped item would copy the URI into the log.
        result = await crawl(
            [{"images": [source]}], {"MEDIAPIPE_MAX_SIZE": 0}, log_level=logging.INFO
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    record = result.items[0]["media"][0]
    assert record["status"] == "data"
    assert record["sha256"] == hashlib.sha256(payload).hexdigest()
    assert peak < MEMORY_LIMIT, (
        f"peak {peak / 2**20:.1f} MiB for a {len(source) / 2**20:.0f} MiB URI"
    )
