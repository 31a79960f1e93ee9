"""The writer process: a child of the crawl commits the small bodies that arrived whole, larger
ones go to the writer threads; ``MEDIAPIPE_WRITER_PROCESS = False`` starts no child; a child
that dies hands its work back to the threads; a child whose crawl is killed exits by itself;
a bad value of the setting stops the crawl at start."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import pytest_twisted
from PIL import Image
from scrapy import signals
from scrapy.settings import Settings
from twisted.internet.task import LoopingCall

from mediapipe.pipeline import MediaPipeline
from mediapipe.settings import MediaConfig, SettingError
from mediapipe.spool import COALESCE
from mediapipe.store.local import FilesystemStore
from mediapipe.writer_process import supports
from tests import media
from tests.conftest import ItemsSpider
from tests.mockserver import body, streamed
from tests.scripts import items_crawl_script
from tests.storecheck import index_entry, leftovers, stored_files

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Self

    from scrapy.crawler import Crawler

    from mediapipe.writer_process import WriterProcess
    from tests.conftest import Crawl, CrawlResult
    from tests.mockserver import MockServer

REPO_ROOT = Path(__file__).resolve().parents[1]
WRITER_MODULE = "mediapipe.writer_process"
STOPPED = "The writer process stopped ("

# Bodies of tens of kB, distinct (no deduplication): each is a job for the child, and what
# the child writes can be told apart from its socket answers and index writes.
SMALL_BMPS = [media.image_bytes("BMP", (200, 150), color) for color in ("orange", "teal", "navy")]
# About 360 kB: more than the spool gathers whole, so it is written on a lane.
LARGE_BMP = media.image_bytes("BMP", (400, 300), "purple")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def h16(source: str) -> str:
    return sha256(source.encode("utf-8"))[:16]


def serve_sources(server: MockServer) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Register the bodies; return the small sources and the large one, with their bytes."""
    small = {
        f"{server.url}/img/png": media.PNG,
        f"{server.url}/img/jpeg": media.JPEG,
        f"{server.url}/img/gif": media.GIF,
    }
    for index, payload in enumerate(SMALL_BMPS):
        path = f"/writer/small-{index}.bmp"
        server.httpd.routes[path] = body(payload, "image/bmp")
        small[server.url + path] = payload
    server.httpd.routes["/writer/large.bmp"] = body(LARGE_BMP, "image/bmp")
    large = {f"{server.url}/writer/large.bmp": LARGE_BMP}
    assert all(len(payload) <= COALESCE for payload in small.values())
    assert len(LARGE_BMP) > COALESCE
    return small, large


def media_pipeline(crawler: Crawler) -> MediaPipeline:
    assert crawler.engine is not None
    found = [
        component
        for component in crawler.engine.scraper.itemproc.middlewares
        if isinstance(component, MediaPipeline)
    ]
    assert len(found) == 1, found
    return found[0]


def watching(**hooks: Callable[[MediaPipeline], None]) -> type[ItemsSpider]:
    """An ItemsSpider that calls ``hooks[signal name](pipeline)`` at each of those signals."""

    class Watching(ItemsSpider):
        @classmethod
        def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
            spider = super().from_crawler(crawler, *args, **kwargs)
            for name, hook in hooks.items():

                def handler(*_: Any, _hook: Any = hook, **__: Any) -> None:
                    _hook(media_pipeline(crawler))

                # weak=False: the handler is a local function that nothing else holds.
                crawler.signals.connect(handler, signal=getattr(signals, name), weak=False)
            return spider

    return Watching


def proc_state(pid: int) -> str | None:
    """The state letter of ``/proc/<pid>/stat``, or None once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text.rsplit(")", 1)[1].split()[0]


def bytes_written(pid: int) -> int:
    """The bytes ``pid`` has written by system calls (files and sockets alike)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == "wchar":
            return int(value)
    raise AssertionError(f"no wchar in /proc/{pid}/io")


def writer_children(pid: int) -> list[int]:
    """The writer processes among ``pid``'s children."""
    children: list[int] = []
    for listing in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children += [int(child) for child in listing.read_text().split()]
        except FileNotFoundError:
            continue
    found = []
    for child in children:
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            continue
        if WRITER_MODULE.encode() in command:
            found.append(child)
    return found


def check_stored(result: CrawlResult, expected: dict[str, bytes]) -> None:
    """Every source downloaded, its file holding its exact bytes, nothing else in the store."""
    records = {record["source"]: record for item in result.items for record in item["media"]}
    assert set(records) == set(expected)
    files = stored_files(result.store)
    assert files == {records[source]["path"]: payload for source, payload in expected.items()}
    for source, payload in expected.items():
        record = records[source]
        assert (record["status"], record["reason"]) == ("downloaded", None), record
        assert (record["sha256"], record["size"]) == (sha256(payload), len(payload)), source
        entry = index_entry(result.store, h16(source))
        assert entry is not None, source
        assert (entry["path"], entry["sha256"], entry["size"]) == (
            record["path"],
            sha256(payload),
            len(payload),
        )
    assert leftovers(result.store) == []
    assert result.stat("mediapipe/sources") == len(expected)
    assert result.stat("mediapipe/status/downloaded") == len(expected)
    assert result.stat("mediapipe/status/failed") == 0
    assert not [name for name in result.stats if name.startswith("mediapipe/failed/")]
    assert result.stat("mediapipe/stored_files") == len(expected)
    assert result.stat("mediapipe/stored_bytes") == sum(map(len, expected.values()))


def keeper(writers: list[WriterProcess]) -> Callable[[MediaPipeline], None]:
    """A hook that keeps the pipeline's writer process in ``writers`` (it must have one)."""

    def keep(pipeline: MediaPipeline) -> None:
        assert pipeline._writer is not None
        writers.append(pipeline._writer)

    return keep


def items_of(small: dict[str, bytes], large: dict[str, bytes]) -> list[dict[str, Any]]:
    return [{"images": list(small)}, {"images": list(large)}]


# -- the child commits the small bodies ----------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_small_bodies_are_committed_by_the_child_and_large_ones_by_threads(
    crawl: Crawl, server: MockServer
) -> None:
    small, large = serve_sources(server)
    writers: list[WriterProcess] = []
    seen: list[tuple[int, int | None, str | None]] = []
    written: list[int] = []

    keep = keeper(writers)

    def look(pipeline: MediaPipeline) -> None:
        assert pipeline._writer is not None
        process = pipeline._writer._process
        if process is None:  # started by the first commit
            seen.append((0, None, None))
        else:
            seen.append((process.pid, process.poll(), proc_state(process.pid)))

    def measure(pipeline: MediaPipeline) -> None:
        assert pipeline._writer is not None
        assert pipeline._writer.pid is not None
        written.append(bytes_written(pipeline._writer.pid))

    spider = watching(spider_opened=keep, response_received=look, item_scraped=measure)
    result = await crawl(items_of(small, large), spider=spider)

    check_stored(result, {**small, **large})
    assert result.warnings == []
    (writer,) = writers
    process = writer._process
    assert process is not None
    # The page's response came before any commit, so before the child; every response after
    # the child started came while it was running.
    assert len(seen) == len(small) + len(large) + 1
    assert seen[0] == (0, None, None)
    running = [entry for entry in seen if entry[0]]
    assert running
    for pid, returncode, state in running:
        assert (pid, returncode) == (process.pid, None)
        assert state in {"R", "S", "D"}, state
    # One job per small body and none for the large one; the child wrote at least their bytes.
    assert writer._next_job == len(small)
    assert writer._pending == {}
    assert max(written) >= sum(map(len, small.values()))
    # close_spider waited for the child, which exited on its own once the socket was shut.
    assert process.poll() == 0
    assert proc_state(process.pid) is None
    assert writer_children(os.getpid()) == []


@pytest_twisted.ensureDeferred
async def test_a_crawl_of_large_files_only_never_starts_the_child(
    crawl: Crawl, server: MockServer
) -> None:
    _, large = serve_sources(server)
    writers: list[WriterProcess] = []

    keep = keeper(writers)

    result = await crawl([{"images": list(large)}], spider=watching(spider_opened=keep))
    check_stored(result, large)
    (writer,) = writers
    assert writer.pid is None
    assert writer._next_job == 0


@pytest_twisted.ensureDeferred
async def test_a_store_that_fsyncs_keeps_the_threads(crawl: Crawl, server: MockServer) -> None:
    small, _ = serve_sources(server)
    pipelines: list[MediaPipeline] = []
    spider = watching(spider_opened=pipelines.append)
    result = await crawl([{"images": list(small)}], {"MEDIAPIPE_FSYNC": True}, spider=spider)
    check_stored(result, small)
    assert pipelines[0]._writer is None


@pytest_twisted.ensureDeferred
async def test_setting_false_starts_no_child_and_threads_store_everything(
    crawl: Crawl, server: MockServer
) -> None:
    small, large = serve_sources(server)
    writers: list[Any] = []
    children: list[list[int]] = []

    def keep(pipeline: MediaPipeline) -> None:
        writers.append(pipeline._writer)
        assert pipeline._saver.writer is None

    def look(pipeline: MediaPipeline) -> None:
        children.append(writer_children(os.getpid()))

    spider = watching(spider_opened=keep, response_received=look)
    result = await crawl(items_of(small, large), {"MEDIAPIPE_WRITER_PROCESS": False}, spider=spider)

    assert writers == [None]
    assert children == [[]] * (len(small) + len(large) + 1)
    check_stored(result, {**small, **large})
    assert result.warnings == []


# -- the child dies ------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_child_killed_before_any_commit_leaves_the_work_to_threads(
    crawl: Crawl, server: MockServer
) -> None:
    small, large = serve_sources(server)
    writers: list[WriterProcess] = []
    stranded: list[int] = []

    def rescue() -> None:
        # Once the pipeline knows the child is gone, nothing can ever answer a pending job:
        # the crawl would wait for it forever. Note it, and hand the jobs to the threads so
        # that the crawl ends and the test can report it.
        for writer in writers:
            if not writer.alive and writer._pending:
                stranded.append(len(writer._pending))
                writer.stopped("stranded jobs")

    watchdog = LoopingCall(rescue)

    def kill(pipeline: MediaPipeline) -> None:
        writer = pipeline._writer
        assert writer is not None
        writers.append(writer)
        writer.start()
        assert writer._process is not None
        os.kill(writer._process.pid, signal.SIGKILL)
        writer._process.wait(timeout=10)
        watchdog.start(0.1, now=False)

    try:
        result = await crawl(items_of(small, large), spider=watching(spider_opened=kill))
    finally:
        if watchdog.running:
            watchdog.stop()

    (writer,) = writers
    assert writer._process is not None
    assert writer._process.returncode == -signal.SIGKILL
    assert stranded == [], (
        f"{sum(stranded)} commit job(s) were never answered: without the rescue above, the "
        "crawl would wait for them forever"
    )
    check_stored(result, {**small, **large})
    stopped = [line for line in result.warnings if line.startswith(STOPPED)]
    assert len(stopped) <= 1, stopped
    assert result.warnings == stopped
    # The pipeline knows the child is gone: every later body went to the threads.
    assert writer.alive is False
    assert writer._pending == {}
    assert writer._next_job <= len(small)


# -- the crawl dies ------------------------------------------------------------------------------

CRAWL_SCRIPT = items_crawl_script(
    "store, items_file",
    """
        "MEDIAPIPE_STORE": store,
        "MEDIAPIPE_MAX_SIZE": 0,
        "DOWNLOAD_TIMEOUT": 120,""",
)
SLOW_CHUNK = media.MP4 + bytes(8192 - len(media.MP4))
SLOW_CHUNKS = 3000  # 0.02 s apiece: a minute at least, far longer than the test waits


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout} s")
        time.sleep(0.02)


def test_child_exits_by_itself_when_the_crawl_is_killed(server: MockServer, tmp_path: Path) -> None:
    server.httpd.routes["/writer/slow.mp4"] = streamed(
        SLOW_CHUNK, SLOW_CHUNKS, "video/mp4", length=True, delay=0.02
    )
    png = f"{server.url}/img/png"
    items = [{"images": [png]}, {"images": [f"{server.url}/writer/slow.mp4"]}]
    items_file = tmp_path / "items.json"
    items_file.write_text(json.dumps(items), encoding="utf-8")
    script = tmp_path / "crawl.py"
    script.write_text(CRAWL_SCRIPT, encoding="utf-8")
    store = tmp_path / "store"
    log = tmp_path / "crawl.log"

    with log.open("wb") as stderr:
        crawl = subprocess.Popen(
            [sys.executable, str(script), str(store), str(items_file)],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        children: list[int] = []

        def child_found() -> bool:
            assert crawl.poll() is None, log.read_text()
            children[:] = writer_children(crawl.pid)
            return bool(children)

        wait_until(child_found, 60, "no writer process started")
        # The small file stored: the child has worked, and the slow body is still coming.
        wait_until(
            lambda: media.PNG in stored_files(store).values() and crawl.poll() is None,
            60,
            "the small file was not stored while the crawl ran",
        )
        assert crawl.poll() is None, log.read_text()
        (child,) = children
        os.kill(crawl.pid, signal.SIGKILL)
        crawl.wait(timeout=30)
    finally:
        if crawl.poll() is None:
            os.kill(crawl.pid, signal.SIGKILL)
            crawl.wait(timeout=30)
    assert crawl.returncode == -signal.SIGKILL

    # A zombie has exited: only its new parent's wait is missing.
    wait_until(
        lambda: proc_state(child) in {None, "Z"},
        10,
        f"the writer process {child} was still running after its crawl was killed",
    )
    assert list(stored_files(store).values()) == [media.PNG]
    assert not [path for path in leftovers(store) if path.name.startswith(f"{child}-")]


# -- a bad setting -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["maybe", 2, ""])
def test_bad_setting_names_itself(value: Any) -> None:
    with pytest.raises(
        SettingError, match=f"MEDIAPIPE_WRITER_PROCESS must be True or False, got {value!r}"
    ):
        MediaConfig.from_settings(Settings({"MEDIAPIPE_WRITER_PROCESS": value}))


@pytest.mark.parametrize(("value", "expected"), [(True, True), ("false", False), (0, False)])
def test_setting_values_are_read(value: Any, expected: bool) -> None:
    config = MediaConfig.from_settings(Settings({"MEDIAPIPE_WRITER_PROCESS": value}))
    assert config.writer_process is expected
    assert MediaConfig.from_settings(Settings()).writer_process is True


@pytest_twisted.ensureDeferred
async def test_bad_setting_stops_the_crawl_at_start(crawl: Crawl, server: MockServer) -> None:
    with pytest.raises(
        SettingError, match="MEDIAPIPE_WRITER_PROCESS must be True or False, got 'maybe'"
    ):
        await crawl([{"images": [f"{server.url}/img/png"]}], {"MEDIAPIPE_WRITER_PROCESS": "maybe"})

    assert server.requested == []
    assert stored_files(crawl.store) == {}
    assert writer_children(os.getpid()) == []


# -- which stores, and what the child shares with the crawl ------------------------------------


class ShardedStore(FilesystemStore):
    """A project's own folder store: its code must run for every file, small ones too."""


def test_only_the_built_in_folder_store_without_fsync_gets_a_child(tmp_path: Path) -> None:
    assert supports(FilesystemStore(tmp_path / "plain"))
    assert not supports(FilesystemStore(tmp_path / "synced", fsync=True))
    assert not supports(ShardedStore(tmp_path / "own"))


@pytest_twisted.ensureDeferred
async def test_the_child_measures_with_the_crawls_pillow_limit(
    crawl: Crawl, server: MockServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pillow refuses past twice its limit; the project lowered it below the PNG's 48 pixels.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)
    writers: list[WriterProcess] = []

    keep = keeper(writers)

    source = f"{server.url}/img/png"
    result = await crawl([{"images": [source]}], spider=watching(spider_opened=keep))
    record = result.items[0]["media"][0]
    assert (record["status"], record["reason"]) == ("failed", "too-large"), record
    assert writers[0]._next_job == 1  # the child measured it
    assert stored_files(result.store) == {}
    assert leftovers(result.store) == []
