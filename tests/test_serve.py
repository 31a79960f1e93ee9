"""``scrapy media-serve``: the real command (or its server) on 127.0.0.1, asked over HTTP."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from parsel import Selector

from mediapipe.serving import MediaServer, Unsatisfiable, byte_range
from tests.scripts import scrapy, scrapy_env
from tests.test_gallery import DemoCrawl, crawl_demo

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

THUMBS = '{"small": [320, 320]}'


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def ask(port: int, path: str, method: str = "GET", **headers: str) -> Answer:
    """One request with ``path`` sent exactly as given (no client-side normalisation)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name.replace("_", "-"), value)
        connection.endheaders()
        response = connection.getresponse()
        return Answer(response.status, dict(response.getheaders()), response.read())
    finally:
        connection.close()


@dataclass
class Served:
    """A running ``scrapy media-serve``, stopped by its PID."""

    process: subprocess.Popen[str]
    url: str
    log: Path

    @property
    def port(self) -> int:
        return int(urlsplit(self.url).port or 0)

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str]:
        os.kill(self.process.pid, signum)
        out, _ = self.process.communicate(timeout=15)
        return self.process.returncode, out


def start_serve(folder: Path, *args: str, log: Path) -> Served:
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "scrapy", "media-serve", "--port", "0", *args],
            cwd=folder,
            env=scrapy_env(),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            encoding="utf-8",
        )
    assert process.stdout is not None
    first = process.stdout.readline()
    found = re.search(r" at (http://127\.0\.0\.1:\d+/)", first)
    if found is None:
        process.kill()
        process.wait(timeout=15)
        raise AssertionError(f"media-serve did not start: {first!r} {log.read_text()}")
    return Served(process, found[1], log)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoCrawl:
    return crawl_demo(tmp_path_factory.mktemp("serve-demo"), f"MEDIAPIPE_THUMBS={THUMBS}")


@pytest.fixture(scope="module")
def served(demo: DemoCrawl) -> Iterator[Served]:
    running = start_serve(demo.folder, "demo.jsonl", log=demo.folder / "serve.log")
    yield running
    code, out = running.stop()
    assert (code, out) == (0, "Stopped\n"), running.log.read_text()
    assert "Traceback" not in running.log.read_text()


def stored(demo: DemoCrawl) -> list[dict[str, Any]]:
    """One record per stored file."""
    return list({r["path"]: r for r in demo.records() if r["path"] is not None}.values())


def by_suffix(demo: DemoCrawl, suffix: str) -> dict[str, Any]:
    return next(r for r in stored(demo) if r["path"].endswith(suffix))


# -- the gallery and the files -------------------------------------------------------------------


def test_the_start_line_says_where(served: Served) -> None:
    assert served.url == f"http://127.0.0.1:{served.port}/"
    assert served.port > 0


def test_the_gallery_is_at_the_root_with_the_feeds_urls(demo: DemoCrawl, served: Served) -> None:
    answer = ask(served.port, "/")
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    page = Selector(text=answer.body.decode("utf-8"))
    assert len(page.css("figure.tile")) == 15
    files = {record["url"]: record["path"] for record in demo.records() if record["path"]}
    thumbnails = {
        thumb["url"]: thumb["path"]
        for record in demo.records()
        for thumb in (record.get("thumbnails") or {}).values()
    }
    assert len(files) == 11
    assert len(thumbnails) == 6
    shown = page.css("figure.tile img::attr(src), audio::attr(src), video::attr(src)").getall()
    linked = page.css("figure.tile a.media::attr(href)").getall()
    assert len(shown) == 12
    assert len(linked) == 7
    # The images show their thumbnails, and link the originals; players play the originals.
    assert set(shown + linked) == set(files) | set(thumbnails)
    for url in shown + linked:
        got = ask(served.port, url)
        assert got.status == 200, url
        assert got.body == (demo.store / {**files, **thumbnails}[url]).read_bytes()


def test_every_stored_file_has_its_bytes_and_type(demo: DemoCrawl, served: Served) -> None:
    assert len(stored(demo)) == 11
    for record in stored(demo):
        got = ask(served.port, record["url"])
        assert got.status == 200, record
        assert got.body == (demo.store / record["path"]).read_bytes()
        assert got.headers["Content-Type"] == record["mime"], record
        assert got.headers["Content-Length"] == str(record["size"])
        assert got.headers["Accept-Ranges"] == "bytes"
        assert got.headers["X-Content-Type-Options"] == "nosniff"
        assert got.headers["Content-Security-Policy"].startswith("default-src 'none';")


def test_the_provenance_query_is_ignored(demo: DemoCrawl, served: Served) -> None:
    record = by_suffix(demo, ".jpg")
    path, _, query = record["url"].partition("?")
    assert query.startswith("url=http%3A%2F%2F")
    expected = (demo.store / record["path"]).read_bytes()
    for url in (record["url"], path, path + "?url=elsewhere&x=1", path + "?"):
        assert ask(served.port, url).body == expected, url


def test_head_answers_headers_only(demo: DemoCrawl, served: Served) -> None:
    record = by_suffix(demo, ".webm")
    got = ask(served.port, record["url"], "HEAD")
    assert (got.status, got.body) == (200, b"")
    assert got.headers["Content-Length"] == str(record["size"])
    assert got.headers["Content-Type"] == "video/webm"


def ranges(size: int) -> list[tuple[str, int, tuple[int, int] | None]]:
    """Range header → status and the bytes (first, last) it answers with."""
    return [
        ("bytes=0-99", 206, (0, 99)),
        ("bytes=100-", 206, (100, size - 1)),
        ("bytes=-50", 206, (size - 50, size - 1)),
        ("bytes=10-10", 206, (10, 10)),
        (f"bytes=0-{size + 1000}", 206, (0, size - 1)),
        (f"bytes=-{size + 5}", 206, (0, size - 1)),
        (f"bytes={size - 1}-", 206, (size - 1, size - 1)),
        (f"bytes={size}-", 416, None),
        (f"bytes={size + 10}-{size + 20}", 416, None),
        ("bytes=-0", 416, None),
        ("bytes=5-1", 200, (0, size - 1)),
        ("bytes=0-1,5-6", 200, (0, size - 1)),
        ("items=0-1", 200, (0, size - 1)),
        ("bytes=x-1", 200, (0, size - 1)),
    ]


@pytest.mark.parametrize("suffix", [".webm", ".mp4", ".ogg"])
def test_byte_ranges_for_audio_and_video(demo: DemoCrawl, served: Served, suffix: str) -> None:
    record = by_suffix(demo, suffix)
    data = (demo.store / record["path"]).read_bytes()
    size = len(data)
    assert size > 200
    for header, status, span in ranges(size):
        got = ask(served.port, record["url"], Range=header)
        assert got.status == status, header
        if span is None:
            assert got.headers["Content-Range"] == f"bytes */{size}", header
            assert got.body == b""
            continue
        first, last = span
        assert got.body == data[first : last + 1], header
        assert got.headers["Content-Length"] == str(last - first + 1)
        if status == 206:
            assert got.headers["Content-Range"] == f"bytes {first}-{last}/{size}", header
        else:
            assert "Content-Range" not in got.headers


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/media/../demo.jsonl", 403),
        ("/media/%2e%2e/demo.jsonl", 403),
        ("/media/%2E%2E%2Fdemo.jsonl", 403),
        ("/media/..%2fdemo.jsonl", 403),
        ("/media/x/../../demo.jsonl", 403),
        ("/media//etc/passwd", 403),
        ("/media/%2Fetc%2Fpasswd", 403),
        ("/thumbnail/../../demo.jsonl", 403),
        ("/thumbnail/%2e%2e/%2e%2e/demo.jsonl", 403),
        ("/media/%00.jpg", 403),
        ("/media/%ff.jpg", 400),
        ("/media/.mediapipe/index.sqlite3", 404),
        ("/media/%2Emediapipe/index.sqlite3", 404),
        ("/media/", 404),
        ("/media/absent.jpg", 404),
        ("/demo.jsonl", 404),
        ("/serve.log", 404),
    ],
)
def test_paths_outside_the_store_are_refused(served: Served, path: str, status: int) -> None:
    got = ask(served.port, path)
    assert got.status == status, got.body
    assert not got.body.startswith(b"{")  # never the feed


def test_symbolic_links_that_lead_out_are_refused(demo: DemoCrawl, served: Served) -> None:
    record = by_suffix(demo, ".png")
    out = demo.store / "leads-out.jpg"
    inside = demo.store / "leads-in.png"
    out.symlink_to(demo.folder / "demo.jsonl")
    inside.symlink_to(demo.store / record["path"])
    try:
        assert ask(served.port, "/media/leads-out.jpg").status == 403
        got = ask(served.port, "/media/leads-in.png")
        assert got.status == 200
        assert got.body == (demo.store / record["path"]).read_bytes()
    finally:
        out.unlink()
        inside.unlink()


def test_it_listens_on_the_loopback_address_only(served: Served) -> None:
    # 127.0.0.2 is this machine too (Linux routes 127.0.0.0/8 to lo); a server bound to
    # 0.0.0.0 or to every loopback address would accept there.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", served.port), timeout=5).close()


def test_the_gallery_follows_the_feed(demo: DemoCrawl, tmp_path: Path) -> None:
    folder = tmp_path / "follow"
    folder.mkdir()
    shutil.copytree(demo.store, folder / "generated_images", symlinks=True)
    lines = (demo.folder / "demo.jsonl").read_text("utf-8").splitlines(keepends=True)
    feed = folder / "feed.jsonl"
    feed.write_text("".join(lines[:4]), "utf-8")
    running = start_serve(folder, "feed.jsonl", log=tmp_path / "serve.log")
    try:
        first = Selector(text=ask(running.port, "/").body.decode())
        feed.write_text("".join(lines), "utf-8")
        second = Selector(text=ask(running.port, "/").body.decode())
    finally:
        assert running.stop(signal.SIGINT) == (0, "Stopped\n")
    assert len(first.css("figure.tile")) == 4
    assert len(second.css("figure.tile")) == 15


# -- starting and stopping -----------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_stop_it_cleanly(demo: DemoCrawl, tmp_path: Path, signum: int) -> None:
    running = start_serve(demo.folder, log=tmp_path / "serve.log")
    # Without a feed there is no gallery, and / says how to get one.
    root = ask(running.port, "/")
    assert root.status == 404
    assert b"scrapy media-serve FEED" in root.body
    assert running.stop(signum) == (0, "Stopped\n")
    assert "Traceback" not in running.log.read_text()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", running.port), timeout=5).close()


def test_errors_are_one_line(demo: DemoCrawl, tmp_path: Path) -> None:
    (tmp_path / "not-json.jsonl").write_text("hello\n", "utf-8")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        port = busy.getsockname()[1]
        cases = {
            ("-s", "MEDIAPIPE_STORE=s3://bucket/prefix/"): (
                "ERROR: scrapy media-serve serves a local store folder, and MEDIAPIPE_STORE = "
                "'s3://bucket/prefix/' is not one: open its files at the bucket's URL "
                "(scrapy media-gallery FEED writes a page that does)\n"
            ),
            ("-s", f"MEDIAPIPE_STORE={tmp_path / 'absent'}"): (
                f"ERROR: the store {tmp_path / 'absent'} (MEDIAPIPE_STORE) is not a folder: "
                "run a crawl first\n"
            ),
            (str(tmp_path / "not-json.jsonl"),): (
                f"ERROR: no media records in the feed {tmp_path / 'not-json.jsonl'}: "
                "1 lines that are not JSON\n"
            ),
            ("--port", str(port)): (
                f"ERROR: cannot listen on 127.0.0.1:{port}: Address already in use\n"
            ),
        }
        for args, error in cases.items():
            done = scrapy(demo.folder, "media-serve", *args, timeout=30)
            assert (done.returncode, done.stdout, done.stderr) == (1, "", error), args
    finally:
        busy.close()
    done = scrapy(demo.folder, "media-serve", "--port", "70000", timeout=30)
    assert done.returncode == 2
    assert "--port must be between 0 and 65535" in done.stderr


# -- the server class ----------------------------------------------------------------------------


@pytest.fixture
def server_in_thread(demo: DemoCrawl) -> Iterator[MediaServer]:
    server = MediaServer(
        demo.store, url_prefix="https://cdn.example/files/", thumbnail_prefix="/thumbs/"
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_the_url_prefixes_are_the_settings(demo: DemoCrawl, server_in_thread: MediaServer) -> None:
    port = server_in_thread.port
    record = by_suffix(demo, ".gif")
    name = record["url"].removeprefix("/media/")
    assert ask(port, "/files/" + name).body == (demo.store / record["path"]).read_bytes()
    assert ask(port, "/media/" + name).status == 404
    thumb = record["thumbnails"]["small"]
    thumb_url = thumb["url"].removeprefix("/thumbnail/")
    expected = (demo.store / thumb["path"]).read_bytes()
    for url in ("/thumbs/" + thumb_url, "/files/thumbnails/" + thumb_url):
        got = ask(port, url)
        assert got.status == 200, url
        assert got.headers["Content-Type"] == "image/webp"
        assert got.body == expected
    assert ask(port, "/thumbnail/" + thumb_url).status == 404
    assert ask(port, "/thumbs/../" + name).status == 403


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 10, None),
        ("bytes=0-0", 10, (0, 0)),
        ("bytes=2-", 10, (2, 9)),
        ("bytes=-3", 10, (7, 9)),
        ("bytes=-30", 10, (0, 9)),
        ("BYTES=1-2", 10, (1, 2)),
        (" bytes=1-2 ", 10, (1, 2)),
        ("bytes=3-100", 10, (3, 9)),
        ("bytes=-", 10, None),
        ("bytes=4-3", 10, None),
        ("bytes=1-2,4-5", 10, None),
        ("bytes=²-3", 10, None),
        ("bytes=10-", 10, Unsatisfiable),
        ("bytes=-0", 10, Unsatisfiable),
        ("bytes=0-", 0, Unsatisfiable),
        ("bytes=-5", 0, Unsatisfiable),
    ],
)
def test_byte_range(header: str | None, size: int, expected: Any) -> None:
    if expected is Unsatisfiable:
        with pytest.raises(Unsatisfiable):
            byte_range(header, size)
    else:
        assert byte_range(header, size) == expected
