"""``copy_media`` (contract §1, §6): the contract as one awaitable call, from a plain script and
inside a running Twisted reactor, against the loopback test servers."""

from __future__ import annotations

import ast
import base64
import hashlib
import json
import logging
import textwrap
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
import pytest_twisted
from PIL import Image
from scrapy.utils.defer import deferred_from_coro

from mediapipe import copy_media
from spiders.site_server import SITE_ROOT
from tests import media
from tests.mockserver import DATE_ONLY_EPOCH, LAST_MODIFIED_EPOCH
from tests.scripts import run_python
from tests.storecheck import stored_files
from tests.tls import PNG_PATH, TLSServer

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.mockserver import MockServer

ROOT = Path(__file__).parents[1]
SCRIPT_NAME = "copy_media_script.py"
STORE = "generated_images"
META = ".mediapipe"
LABEL = "cat+cute+A_cute_cat"
PNG_DATA_URI = "data:image/png;base64," + base64.b64encode(media.PNG).decode()
CAT_JPG = (SITE_ROOT / "media" / "cat.jpg").read_bytes()
# The tests talk to 127.0.0.1 on purpose; contract §7.1 refuses loopback without this setting.
ALLOW = {"MEDIAPIPE_ALLOW_PRIVATE_NETWORKS": True}

# Every script starts with this; its body sets ``result``, which is printed as JSON.
PRELUDE = """\
import asyncio
import json
import sys

from mediapipe import copy_media

URL = sys.argv[1]
ARGS = json.loads(sys.argv[2])
ALLOW = {"MEDIAPIPE_ALLOW_PRIVATE_NETWORKS": True}
"""


# -- helpers ---------------------------------------------------------------------------------


def h16(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


def name_for(source: str, epoch: int, ext: str, label: str = "") -> str:
    """The file name contract §5 promises for ``source``."""
    middle = f"{label}_" if label else ""
    return f"{epoch}_{middle}{h16(source)}{ext}"


def provenance(source: str) -> str:
    return "?url=" + quote(source, safe="")


def split_epoch(name: str) -> tuple[int, str]:
    """``<epoch>_<rest>`` → (epoch, rest), for names whose epoch is the current time."""
    epoch, _, rest = name.partition("_")
    assert epoch.isdigit(), name
    return int(epoch), rest


@dataclass
class ScriptRun:
    result: Any
    stderr: str
    started: float
    ended: float

    @property
    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]

    def assert_now(self, epoch: int) -> None:
        """The epoch is the time of the run (a Date header or the clock, whole seconds)."""
        assert int(self.started) - 1 <= epoch <= self.ended + 1


def run_script(tmp_path: Path, body: str, url: str, args: Any = None) -> ScriptRun:
    """Run ``body`` as a plain Python script (no reactor) in ``tmp_path``; return its result.

    The script gets the server URL as ``URL`` and ``args`` (JSON) as ``ARGS``.
    """
    text = PRELUDE + textwrap.dedent(body) + "\nprint(json.dumps(result))\n"
    started = time.time()
    process = run_python(tmp_path, SCRIPT_NAME, text, url, json.dumps(args))
    ended = time.time()
    assert "Traceback" not in process.stderr, process.stderr
    return ScriptRun(json.loads(process.stdout.splitlines()[-1]), process.stderr, started, ended)


def failure_line(reason: str, source: str, detail: str | None = None) -> str:
    """The WARNING line a script without logging configuration shows for a failed source."""
    line = f"WARNING: Media (failed: {reason}): {source}"
    return line + f" ({detail})" if detail is not None else line


def lines_starting(lines: list[str], prefix: str) -> list[str]:
    return [line for line in lines if line.startswith(prefix)]


# -- §1 the reference usage from a plain script ----------------------------------------------


def readme_example() -> str:
    """The Python block of the README's ``copy_media`` section."""
    section = (ROOT / "README.md").read_text("utf-8").split("## `copy_media` without a crawl")[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_readme_example_runs_offline_as_documented(tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    started = time.time()
    process = run_python(tmp_path, script.name, readme_example())
    assert process.stderr == ""
    urls, pairs = map(ast.literal_eval, process.stdout.splitlines())
    [stored] = stored_files(tmp_path / STORE)
    epoch, rest = split_epoch(stored)
    assert int(started) <= epoch <= time.time()
    red_dot = readme_example().split('"data:image/png;base64,"', 1)[1].split('"')[1]
    assert rest == f"{LABEL}_{h16('data:image/png;base64,' + red_dot)}.png"
    assert urls == [f"/media/{stored}", "/static/local.png"]
    assert pairs == [(f"/media/{stored}", stored), ("/static/local.png", None)]
    with Image.open(tmp_path / STORE / stored) as image:
        assert (image.format, image.size, image.convert("RGB").getpixel((0, 0))) == (
            "PNG",
            (1, 1),
            (255, 0, 0),
        )


def test_reference_script_two_asyncio_runs(tmp_path: Path, server: MockServer) -> None:
    images = [
        f"{server.url}/img/last-modified",
        f"{server.url}/media/cat.jpg",
        PNG_DATA_URI,
        "/static/local.png",
        f"{server.url}/status/404",
        "ftp://127.0.0.1/cat.png",
    ]
    date_only = f"{server.url}/img/date-only"
    run = run_script(
        tmp_path,
        """
        IMAGES = ARGS["images"]

        async def main():
            return await copy_media(IMAGES, tags=["cat", "cute"], alt="A cute cat", settings=ALLOW)

        async def main_again():
            again = await copy_media(
                IMAGES, tags=["cat", "cute"], alt="A cute cat", settings=ALLOW
            )
            third = await copy_media(
                ARGS["date_only"], tags=["cat", "cute"], alt="A cute cat", settings=ALLOW
            )
            return again, third

        first = asyncio.run(main())
        second, third = asyncio.run(main_again())
        result = {"first": first, "second": second, "third": third}
        """,
        server.url,
        {"images": images, "date_only": date_only},
    )
    first = run.result["first"]
    png_name = name_for(images[0], LAST_MODIFIED_EPOCH, ".png", LABEL)
    jpg_name = name_for(images[1], LAST_MODIFIED_EPOCH, ".jpg", LABEL)
    assert len(first) == len(images)
    assert first[0] == f"/media/{png_name}{provenance(images[0])}"
    assert first[1] == f"/media/{jpg_name}{provenance(images[1])}"
    # A data URI is named with the current time and never gets provenance.
    assert first[2].startswith("/media/")
    data_epoch, data_rest = split_epoch(first[2].removeprefix("/media/"))
    run.assert_now(data_epoch)
    assert data_rest == f"{LABEL}_{h16(PNG_DATA_URI)}.png"
    assert first[3:] == images[3:]  # local path, 404 and ftp: unchanged
    # The second asyncio.run reuses the stored files: same URLs, no new request.
    assert run.result["second"] == first
    date_name = name_for(date_only, DATE_ONLY_EPOCH, ".png", LABEL)
    assert run.result["third"] == [f"/media/{date_name}{provenance(date_only)}"]
    data_name = first[2].removeprefix("/media/")
    assert stored_files(tmp_path / STORE) == {
        png_name: media.PNG,
        jpg_name: CAT_JPG,
        data_name: media.PNG,
        date_name: media.PNG,
    }
    assert server.count("/img/last-modified") == 1
    assert server.count("/media/cat.jpg") == 1
    assert server.count("/img/date-only") == 1
    assert server.count("/status/404") == 2  # a failure is not remembered across calls
    # One WARNING per failed source and call, naming source and reason; nothing else on stderr.
    assert run.stderr_lines == lines_starting(run.stderr_lines, "WARNING: Media (failed: ")
    assert len(run.stderr_lines) == 4
    not_found = failure_line("http-404", images[4])
    unsupported = failure_line("unsupported-url", images[5])
    assert len(lines_starting(run.stderr_lines, not_found)) == 2
    assert len(lines_starting(run.stderr_lines, unsupported)) == 2


# -- §6 the returned URL ---------------------------------------------------------------------


def test_add_url_variants(tmp_path: Path, server: MockServer) -> None:
    sources = [f"{server.url}/img/last-modified?v={n}&w=ü x/y" for n in range(4)]
    run = run_script(
        tmp_path,
        """
        async def main():
            default, on, text, off = ARGS
            return [
                await copy_media([default], settings=ALLOW),
                await copy_media([on], add_url=True, settings=ALLOW),
                await copy_media([text], add_url="foo=1", settings=ALLOW),
                await copy_media([off], add_url=False, settings=ALLOW),
            ]

        result = asyncio.run(main())
        """,
        server.url,
        sources,
    )
    names = [name_for(source, LAST_MODIFIED_EPOCH, ".png") for source in sources]
    assert run.result == [
        [f"/media/{names[0]}{provenance(sources[0])}"],
        [f"/media/{names[1]}{provenance(sources[1])}"],
        [f"/media/{names[2]}?foo=1"],
        [f"/media/{names[3]}"],
    ]
    port = server.url.rpartition(":")[2]
    assert run.result[0][0].endswith(
        f"?url=http%3A%2F%2F127.0.0.1%3A{port}%2Fimg%2Flast-modified%3Fv%3D0%26w%3D%C3%BC%20x%2Fy"
    )
    assert stored_files(tmp_path / STORE) == dict.fromkeys(names, media.PNG)
    assert run.stderr_lines == []


def test_data_uri_never_gets_provenance(tmp_path: Path, server: MockServer) -> None:
    gif_uri = "data:image/gif;base64," + base64.b64encode(media.GIF).decode()
    run = run_script(
        tmp_path,
        """
        async def main():
            return [
                await copy_media(ARGS, add_url=True, settings=ALLOW),
                await copy_media(ARGS, add_url="foo=1", settings=ALLOW),
            ]

        result = asyncio.run(main())
        """,
        server.url,
        [gif_uri],
    )
    [with_true], [with_text] = run.result
    assert with_true == with_text  # the second call reuses the stored file
    assert "?" not in with_true
    epoch, rest = split_epoch(with_true.removeprefix("/media/"))
    run.assert_now(epoch)
    assert rest == f"{h16(gif_uri)}.gif"
    assert stored_files(tmp_path / STORE) == {with_true.removeprefix("/media/"): media.GIF}


def test_headers_and_cookies_reach_server_without_provenance(
    tmp_path: Path, server: MockServer
) -> None:
    with_headers = f"{server.url}/echo?with=headers"
    with_cookies = f"{server.url}/echo?with=cookies"
    run = run_script(
        tmp_path,
        """
        async def main():
            headers, cookies = ARGS
            return [
                await copy_media([headers], headers={"X-Token": "s"}, settings=ALLOW),
                await copy_media([cookies], cookies={"session": "abc"}, settings=ALLOW),
            ]

        result = asyncio.run(main())
        """,
        server.url,
        [with_headers, with_cookies],
    )
    assert len(server.seen_headers) == 2
    headers_seen, cookies_seen = server.seen_headers
    assert headers_seen.get("X-Token") == "s"
    assert "Cookie" not in headers_seen
    assert cookies_seen.get("Cookie") == "session=abc"
    assert "X-Token" not in cookies_seen
    names = []
    for [url], source in zip(run.result, [with_headers, with_cookies], strict=True):
        assert "?" not in url  # credentials: no provenance
        epoch, rest = split_epoch(url.removeprefix("/media/"))
        run.assert_now(epoch)  # /echo sends only a Date header
        assert rest == f"{h16(source)}.png"
        names.append(url.removeprefix("/media/"))
    assert stored_files(tmp_path / STORE) == dict.fromkeys(names, media.PNG)


def test_proxy_reaches_unresolvable_host(tmp_path: Path, server: MockServer) -> None:
    source = "http://media.example.invalid/img/last-modified"
    run = run_script(
        tmp_path,
        """
        result = asyncio.run(copy_media(ARGS, proxy=URL, settings=ALLOW))
        """,
        server.url,
        [source],
    )
    name = name_for(source, LAST_MODIFIED_EPOCH, ".png")
    assert run.result == [f"/media/{name}{provenance(source)}"]
    assert stored_files(tmp_path / STORE) == {name: media.PNG}
    assert server.count("/img/last-modified") == 1
    assert run.stderr_lines == []


# -- target, thumbnail, return_target --------------------------------------------------------


def test_target_stores_at_given_path(tmp_path: Path, server: MockServer) -> None:
    source = f"{server.url}/img/last-modified"
    run = run_script(
        tmp_path,
        """
        result = asyncio.run(
            copy_media(ARGS, target="sub/one.png", return_target=True, settings=ALLOW)
        )
        """,
        server.url,
        [source],
    )
    [[url, path]] = run.result
    assert url == f"/media/sub/one.png{provenance(source)}"
    assert path == "sub/one.png"  # relative to the store, as the record's path
    assert stored_files(tmp_path / STORE) == {"sub/one.png": media.PNG}


def test_target_cannot_leave_store(tmp_path: Path, server: MockServer) -> None:
    outside = tmp_path / "outside" / "absolute.png"
    targets = ["../escape.png", str(outside), "sub/../../escape2.png", f"{META}/index/x.png"]
    sources = [f"{server.url}/img/png?target={n}" for n in range(len(targets))]
    run = run_script(
        tmp_path,
        """
        async def main():
            return [
                await copy_media([source], target=target, return_target=True, settings=ALLOW)
                for source, target in ARGS
            ]

        result = asyncio.run(main())
        """,
        server.url,
        list(zip(sources, targets, strict=True)),
    )
    assert run.result == [[[source, None]] for source in sources]
    for source, target in zip(sources, targets, strict=True):
        detail = f"file name {target!r} would leave the media store"
        assert failure_line("storage", source, detail) in run.stderr_lines
    assert len(run.stderr_lines) == len(targets)
    everything = {
        path.relative_to(tmp_path).as_posix()
        for path in tmp_path.rglob("*")
        if path.is_file() and META not in path.parts
    }
    assert everything == {SCRIPT_NAME}
    assert not outside.parent.exists()
    assert not (tmp_path / STORE / META / "index" / "x.png").exists()


def test_target_through_a_symlink_cannot_leave_store(tmp_path: Path, server: MockServer) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / STORE).mkdir()
    (tmp_path / STORE / "link").symlink_to(outside)
    source = f"{server.url}/img/png"
    run = run_script(
        tmp_path,
        """
        result = asyncio.run(
            copy_media([ARGS], target="link/escape.png", return_target=True, settings=ALLOW)
        )
        """,
        server.url,
        source,
    )
    assert run.result == [[source, None]]
    detail = "file name 'link/escape.png' leads out of the media store"
    assert run.stderr_lines == [failure_line("storage", source, detail)]
    assert list(outside.iterdir()) == []


@pytest_twisted.ensureDeferred
async def test_empty_list_gives_empty_list(tmp_path: Path, server: MockServer) -> None:
    result = await deferred_from_coro(copy_media([], media_dir=tmp_path / "store", settings=ALLOW))
    assert result == []
    assert server.requested == []


@pytest_twisted.ensureDeferred
async def test_repeated_source_fetched_once(tmp_path: Path, server: MockServer) -> None:
    source = f"{server.url}/img/last-modified"
    result = await deferred_from_coro(
        copy_media(
            [source, None, source], tags=["cat"], media_dir=tmp_path / "store", settings=ALLOW
        )
    )
    url = f"/media/{name_for(source, LAST_MODIFIED_EPOCH, '.png', 'cat')}{provenance(source)}"
    assert result == [url, None, url]
    assert server.count("/img/last-modified") == 1
    assert stored_files(tmp_path / "store") == {
        name_for(source, LAST_MODIFIED_EPOCH, ".png", "cat"): media.PNG
    }


@pytest_twisted.ensureDeferred
async def test_target_honoured_when_source_already_stored(
    tmp_path: Path, server: MockServer
) -> None:
    """A source already in the store (contract §8 reuse) must still end up at the given target."""
    first, second = f"{server.url}/img/gif", f"{server.url}/img/jpeg"
    store = tmp_path / "store"

    async def call(source: str, target: str | None) -> list[Any]:
        return await deferred_from_coro(
            copy_media([source], target=target, media_dir=store, settings=ALLOW)
        )

    assert await call(first, "a.gif") == [f"/media/a.gif{provenance(first)}"]
    plain = await call(second, None)
    assert plain[0].startswith("/media/")
    assert await call(first, "b.gif") == [f"/media/b.gif{provenance(first)}"]
    assert await call(second, "c.jpg") == [f"/media/c.jpg{provenance(second)}"]
    files = stored_files(store)
    assert files["a.gif"] == files["b.gif"] == media.GIF
    assert files["c.jpg"] == media.JPEG


@pytest_twisted.ensureDeferred
async def test_target_with_two_sources_raises(tmp_path: Path, server: MockServer) -> None:
    sources = [f"{server.url}/img/png", f"{server.url}/img/gif"]
    with pytest.raises(ValueError, match="exactly one source"):
        await deferred_from_coro(
            copy_media(sources, target="one.png", media_dir=tmp_path / "store", settings=ALLOW)
        )
    assert server.requested == []
    assert stored_files(tmp_path) == {}


def test_thumbnail_store_and_url(tmp_path: Path, server: MockServer) -> None:
    source = f"{server.url}/img/last-modified"
    run = run_script(
        tmp_path,
        """
        result = asyncio.run(
            copy_media(ARGS, tags=["cat", "cute"], alt="A cute cat", thumbnail=True,
                       settings=ALLOW)
        )
        """,
        server.url,
        [source],
    )
    name = name_for(source, LAST_MODIFIED_EPOCH, ".png", LABEL)
    assert run.result == [f"/thumbnail/{name}"]
    assert stored_files(tmp_path / STORE) == {f"thumbnails/{name}": media.PNG}


@pytest_twisted.ensureDeferred
async def test_return_target_of_a_thumbnail_is_relative_to_the_store(
    tmp_path: Path, server: MockServer
) -> None:
    source = f"{server.url}/img/last-modified"
    store = tmp_path / "store"
    result = await deferred_from_coro(
        copy_media([source], thumbnail=True, return_target=True, media_dir=store, settings=ALLOW)
    )
    name = name_for(source, LAST_MODIFIED_EPOCH, ".png")
    assert result == [(f"/thumbnail/{name}", f"thumbnails/{name}")]
    assert stored_files(store) == {f"thumbnails/{name}": media.PNG}


def test_return_target_gives_url_and_path(tmp_path: Path, server: MockServer) -> None:
    sources = [
        f"{server.url}/img/last-modified",
        PNG_DATA_URI,
        "/static/local.png",
        f"{server.url}/status/500",
    ]
    run = run_script(
        tmp_path,
        """
        result = asyncio.run(copy_media(ARGS, return_target=True, settings=ALLOW))
        """,
        server.url,
        sources,
    )
    (png_url, png_path), (data_url, data_path), local, failed = run.result
    name = name_for(sources[0], LAST_MODIFIED_EPOCH, ".png")
    assert png_url == f"/media/{name}{provenance(sources[0])}"
    data_name = data_url.removeprefix("/media/")
    # Relative to the store, as a record's path: the URL prefix plus the path is the URL.
    assert (png_path, data_path) == (name, data_name)
    assert (tmp_path / STORE / png_path).read_bytes() == media.PNG
    assert (tmp_path / STORE / data_path).read_bytes() == media.PNG
    assert local == [sources[2], None]
    assert failed == [sources[3], None]
    assert stored_files(tmp_path / STORE) == {name: media.PNG, data_name: media.PNG}


# -- media_dir and settings ------------------------------------------------------------------


def test_media_dir_is_the_store(tmp_path: Path, server: MockServer) -> None:
    source = f"{server.url}/img/last-modified"
    custom = tmp_path / "elsewhere" / "files"
    run = run_script(
        tmp_path,
        """
        result = asyncio.run(copy_media(ARGS[0], media_dir=ARGS[1], settings=ALLOW))
        """,
        server.url,
        [[source], str(custom)],
    )
    name = name_for(source, LAST_MODIFIED_EPOCH, ".png")
    assert run.result == [f"/media/{name}{provenance(source)}"]
    assert stored_files(custom) == {name: media.PNG}
    assert not (tmp_path / STORE).exists()


def test_max_size_setting_refuses_large_file(tmp_path: Path, server: MockServer) -> None:
    source = f"{server.url}/img/png"
    run = run_script(
        tmp_path,
        """
        result = asyncio.run(
            copy_media(ARGS, settings={**ALLOW, "MEDIAPIPE_MAX_SIZE": 10})
        )
        """,
        server.url,
        [source],
    )
    assert run.result == [source]
    assert run.stderr_lines == [
        failure_line("too-large", source, f"Content-Length {len(media.PNG)} > limit 10")
    ]
    assert stored_files(tmp_path / STORE) == {}
    assert list((tmp_path / STORE / META / "tmp").iterdir()) == []


def test_url_prefix_setting(tmp_path: Path, server: MockServer) -> None:
    source = f"{server.url}/img/last-modified"
    run = run_script(
        tmp_path,
        """
        result = asyncio.run(
            copy_media(ARGS, settings={**ALLOW, "MEDIAPIPE_URL_PREFIX": "/files/"})
        )
        """,
        server.url,
        [source],
    )
    name = name_for(source, LAST_MODIFIED_EPOCH, ".png")
    assert run.result == [f"/files/{name}{provenance(source)}"]
    assert stored_files(tmp_path / STORE) == {name: media.PNG}


def test_bad_setting_raises_cleanly(tmp_path: Path, server: MockServer) -> None:
    source = f"{server.url}/img/png"
    run = run_script(
        tmp_path,
        """
        async def main():
            try:
                await copy_media(ARGS, settings={**ALLOW, "MEDIAPIPE_MAX_NAME_BYTES": 5})
            except ValueError as error:
                return str(error)
            return None

        result = asyncio.run(main())
        """,
        server.url,
        [source],
    )
    assert run.result is not None
    assert "MEDIAPIPE_MAX_NAME_BYTES" in run.result
    assert server.requested == []
    assert run.stderr_lines == []  # no "Unclosed client session" or other leftovers


# -- timeout and TLS -------------------------------------------------------------------------


def test_timeout_fails_slow_source(tmp_path: Path, server: MockServer) -> None:
    source = f"{server.url}/slow"
    run = run_script(
        tmp_path,
        """
        result = asyncio.run(copy_media(ARGS, timeout=1, settings=ALLOW))
        """,
        server.url,
        [source],
    )
    assert run.result == [source]
    assert len(lines_starting(run.stderr_lines, failure_line("timeout", source))) == 1
    assert len(run.stderr_lines) == 1
    assert stored_files(tmp_path / STORE) == {}


def test_ssl_flag_controls_certificate_check(tmp_path: Path) -> None:
    with TLSServer(tmp_path) as tls:
        source = f"{tls.url}{PNG_PATH}"
        run = run_script(
            tmp_path,
            """
            async def main():
                strict = await copy_media(ARGS, ssl=True, media_dir="strict", settings=ALLOW)
                lax = await copy_media(ARGS, ssl=False, media_dir="lax", settings=ALLOW)
                return strict, lax

            result = asyncio.run(main())
            """,
            tls.url,
            [source],
        )
        assert tls.count(PNG_PATH) == 1  # the verifying client never sent a request
    strict, [lax] = run.result
    assert strict == [source]
    assert run.stderr_lines == lines_starting(run.stderr_lines, failure_line("tls", source))
    assert len(run.stderr_lines) == 1
    assert stored_files(tmp_path / "strict") == {}
    epoch, rest = split_epoch(lax.removeprefix("/media/"))
    run.assert_now(epoch)
    assert rest == f"{h16(source)}.png{provenance(source)}"
    assert stored_files(tmp_path / "lax") == {f"{epoch}_{h16(source)}.png": media.PNG}


@contextmanager
def redirecting_to(location: str) -> Iterator[str]:
    """A server on 127.0.0.1 that answers every GET with a 302 to ``location``; yields its URL."""

    class Redirect(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/go"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest_twisted.ensureDeferred
async def test_credentials_not_sent_to_redirect_target_on_other_host(
    tmp_path: Path, server: MockServer
) -> None:
    """Spec §10: headers and cookies must not follow a redirect to another host."""
    other_host = f"http://localhost:{server.url.rpartition(':')[2]}/echo"
    with redirecting_to(other_host) as source:
        result = await deferred_from_coro(
            copy_media(
                [source],
                headers={"X-Token": "s"},
                cookies={"session": "abc"},
                media_dir=tmp_path / "store",
                settings=ALLOW,
            )
        )
    assert server.count("/echo") == 1
    [seen] = server.seen_headers
    assert seen["Host"] == f"localhost:{server.url.rpartition(':')[2]}"
    assert ("X-Token" in seen, "Cookie" in seen) == (False, False)
    assert "?" not in result[0]
    name = result[0].removeprefix("/media/")
    assert stored_files(tmp_path / "store") == {name: media.PNG}


# -- inside a running Twisted reactor ---------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_works_under_installed_reactor(
    tmp_path: Path, server: MockServer, caplog: pytest.LogCaptureFixture
) -> None:
    sources = [f"{server.url}/img/last-modified", f"{server.url}/status/404", PNG_DATA_URI]
    store = tmp_path / "store"
    with caplog.at_level(logging.WARNING, logger="mediapipe"):
        result = await deferred_from_coro(
            copy_media(
                sources,
                tags=["cat", "cute"],
                alt="A cute cat",
                media_dir=store,
                return_target=True,
                settings=ALLOW,
            )
        )
    name = name_for(sources[0], LAST_MODIFIED_EPOCH, ".png", LABEL)
    assert result[0] == (f"/media/{name}{provenance(sources[0])}", name)
    assert result[1] == (sources[1], None)
    data_url, data_path = result[2]
    data_name = data_url.removeprefix("/media/")
    assert data_path == data_name
    assert data_name.endswith(f"_{LABEL}_{h16(PNG_DATA_URI)}.png")
    assert stored_files(store) == {name: media.PNG, data_name: media.PNG}
    assert server.count("/img/last-modified") == 1
    assert server.count("/status/404") == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [w for w in warnings if w.startswith("Media (failed: ")] == [
        f"Media (failed: http-404): {sources[1]}"
    ]


@pytest_twisted.ensureDeferred
async def test_ssl_verification_under_installed_reactor(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with TLSServer(tmp_path) as tls:
        source = f"{tls.url}{PNG_PATH}"
        with caplog.at_level(logging.WARNING, logger="mediapipe"):
            strict = await deferred_from_coro(
                copy_media([source], ssl=True, media_dir=tmp_path / "strict", settings=ALLOW)
            )
            lax = await deferred_from_coro(
                copy_media([source], ssl=False, media_dir=tmp_path / "lax", settings=ALLOW)
            )
        assert tls.count(PNG_PATH) == 1
    assert strict == [source]
    failures = [r.getMessage() for r in caplog.records if r.name.startswith("mediapipe")]
    assert len(failures) == 1
    assert failures[0].startswith(f"Media (failed: tls): {source} (")
    assert stored_files(tmp_path / "strict") == {}
    [lax_url] = lax
    name = lax_url.removeprefix("/media/").partition("?")[0]
    assert stored_files(tmp_path / "lax") == {name: media.PNG}
