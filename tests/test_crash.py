"""Crash safety (contract §7.4): a crawl killed with SIGKILL in the middle of large downloads leaves
no partial file under a final name, and the next run sweeps its leftovers and completes.

The crawl runs in a subprocess (a real ``AsyncCrawlerProcess`` with the add-on); the test server
runs in the test process and serves large bodies slowly enough to kill the crawl mid-way.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests import media
from tests.mockserver import body, streamed
from tests.scripts import items_crawl_script
from tests.storecheck import index_entry

if TYPE_CHECKING:
    from tests.mockserver import MockServer

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).parents[1]
CHUNK_BYTES = 64 * 1024
BIG_CHUNKS = 1024  # 64 MiB per big body
BIGS = 4
SMALLS = 3
SERVE_DELAY = 0.002  # seconds per chunk: about 2 s per body at least

SCRIPT = items_crawl_script(
    "store, items_file, feed",
    """
        "MEDIAPIPE_STORE": store,
        "MEDIAPIPE_MAX_SIZE": 0,
        "DOWNLOAD_TIMEOUT": 120,
        "FEEDS": {feed: {"format": "jsonlines"}},""",
)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def h16(source: str) -> str:
    return sha256(source.encode("utf-8"))[:16]


def big_chunk(index: int) -> bytes:
    """64 KiB starting with an MP4 header; distinct per body."""
    return media.MP4 + bytes([index]) * (CHUNK_BYTES - len(media.MP4))


def big_sha256(index: int) -> str:
    digest = hashlib.sha256()
    chunk = big_chunk(index)
    for _ in range(BIG_CHUNKS):
        digest.update(chunk)
    return digest.hexdigest()


def serve(server: MockServer) -> dict[str, tuple[str, int]]:
    """Register the bodies; return each source URL's (sha256, size)."""
    expected: dict[str, tuple[str, int]] = {}
    for index in range(BIGS):
        path = f"/crash/big-{index}.mp4"
        server.httpd.routes[path] = streamed(
            big_chunk(index), BIG_CHUNKS, "video/mp4", length=True, delay=SERVE_DELAY
        )
        expected[server.url + path] = (big_sha256(index), CHUNK_BYTES * BIG_CHUNKS)
    for index in range(SMALLS):
        payload = media.image_bytes("PNG", (index + 2, index + 5), "purple")
        path = f"/crash/small-{index}.png"
        server.httpd.routes[path] = body(payload, "image/png")
        expected[server.url + path] = (sha256(payload), len(payload))
    return expected


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def final_files(store: Path) -> list[Path]:
    return [
        path
        for path in store.rglob("*")
        if path.is_file() and ".mediapipe" not in path.relative_to(store).parts
    ]


def temp_files(store: Path) -> list[Path]:
    tmp = store / ".mediapipe" / "tmp"
    return sorted(tmp.iterdir()) if tmp.exists() else []


def check_final_files(store: Path, expected: dict[str, tuple[str, int]]) -> None:
    """Every file under a final name holds exactly the bytes of the source its name hashes."""
    by_hash = {h16(source): digest for source, digest in expected.items()}
    for path in final_files(store):
        key = path.name.rsplit("_", 1)[-1].split(".", 1)[0]
        assert key in by_hash, f"{path.name} is no source's file"
        sha, size = by_hash[key]
        assert path.stat().st_size == size, f"{path.name} is partial: {path.stat().st_size} bytes"
        assert file_sha256(path) == sha, f"{path.name} does not hold its source's bytes"


def crawl_command(tmp_path: Path, store: Path, sources: list[str], feed: Path) -> list[str]:
    script = tmp_path / "crawl.py"
    script.write_text(SCRIPT, encoding="utf-8")
    items = [
        {"images": sources[: len(sources) // 2], "tags": ["crash", "one"]},
        {"images": sources[len(sources) // 2 :], "tags": ["crash", "two"]},
    ]
    sources_file = tmp_path / "items.json"
    sources_file.write_text(json.dumps(items), encoding="utf-8")
    return [sys.executable, str(script), str(store), str(sources_file), str(feed)]


def subprocess_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


def wait_for_temp_bytes(store: Path, process: subprocess.Popen[bytes], timeout: float) -> int:
    """Poll until temporary files hold some bytes; return how many temp files there are."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the crawl ended before it could be killed"
        sizes = []
        for path in temp_files(store):
            try:
                sizes.append(path.stat().st_size)
            except FileNotFoundError:
                continue
        # Several big bodies well under way: the kill lands in the middle of their writes.
        if sum(size > 1024 * 1024 for size in sizes) >= 2:
            return len(sizes)
        time.sleep(0.02)
    raise AssertionError(f"no temporary file with bytes in {store} within {timeout} s")


def test_kill_mid_download_leaves_no_partial_file_and_next_run_completes(
    server: MockServer, tmp_path: Path
) -> None:
    expected = serve(server)
    sources = list(expected)
    store = tmp_path / "store"

    # -- run 1: killed while the big bodies stream to disk ----------------------------------
    killed_feed = tmp_path / "killed.jsonl"
    killed = subprocess.Popen(
        crawl_command(tmp_path, store, sources, killed_feed),
        cwd=tmp_path,
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_temp_bytes(store, killed, timeout=60)
        os.kill(killed.pid, signal.SIGKILL)
    finally:
        if killed.poll() is None:
            os.kill(killed.pid, signal.SIGKILL)
        killed.wait(timeout=30)
        assert killed.stderr is not None
        killed.stderr.close()
    assert killed.returncode == -signal.SIGKILL

    check_final_files(store, expected)
    left = temp_files(store)
    assert left, "a kill mid-download must leave temporary files (nothing swept them yet)"
    assert all(path.name.split("-")[1] == str(killed.pid) for path in left)
    # No big body can be complete: the kill came while they were streaming.
    stored_big = [p for p in final_files(store) if p.suffix == ".mp4"]
    assert len(stored_big) < BIGS

    # -- run 2: the same crawl, to completion -----------------------------------------------
    feed = tmp_path / "done.jsonl"
    done = subprocess.run(
        crawl_command(tmp_path, store, sources, feed),
        cwd=tmp_path,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]

    assert temp_files(store) == [], "the killed run's leftovers were not swept"
    for path in left:
        assert not path.exists()
    items = [json.loads(line) for line in feed.read_text(encoding="utf-8").splitlines()]
    records = {record["source"]: record for item in items for record in item["media"]}
    assert set(records) == set(expected)
    for source, (sha, size) in expected.items():
        record = records[source]
        assert record["status"] in {"downloaded", "uptodate"}, record
        assert (record["sha256"], record["size"]) == (sha, size), source
        path = store / record["path"]
        assert file_sha256(path) == sha, f"{record['path']} does not hold {source}"
        entry = index_entry(store, h16(source))
        assert entry is not None, source
        assert entry["path"] == record["path"]
        assert (entry["sha256"], entry["size"]) == (sha, size)
        assert entry["mime"] == record["mime"]
    check_final_files(store, expected)
    summary = [line for line in done.stderr.splitlines() if "mediapipe:" in line]
    assert summary, done.stderr[-4000:]
    assert "0 failed" in summary[-1], summary[-1]
