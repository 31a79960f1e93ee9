"""``scrapy media-serve [FEED] [--port N]``: the store, and its gallery, on 127.0.0.1."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from mediapipe.commands import fail

if TYPE_CHECKING:
    import argparse
    from types import FrameType

    from mediapipe.serving import MediaServer

DEFAULT_PORT = 8000


class Command(ScrapyCommand):
    requires_project = False
    requires_crawler_process = False

    def syntax(self) -> str:
        return "[FEED] [--port N]"

    def short_desc(self) -> str:
        return "Serve the media store on 127.0.0.1, with the gallery of a feed at /"

    def long_desc(self) -> str:
        return (
            "Serve the local store (MEDIAPIPE_STORE) on 127.0.0.1 only: its files under "
            "MEDIAPIPE_URL_PREFIX (/media/), its thumbnails under MEDIAPIPE_THUMBS_URL_PREFIX "
            "(/thumbnail/), with byte "
            "ranges for audio and video; and, given a feed, its gallery at /, whose links are "
            "the feed's own URLs. Ctrl-C stops it."
        )

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument(
            "--port",
            type=int,
            default=DEFAULT_PORT,
            metavar="N",
            help=f"the port on 127.0.0.1 (default: {DEFAULT_PORT}; 0 picks a free one)",
        )

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) > 1:
            raise UsageError("give at most one feed: scrapy media-serve [FEED] [--port N]")
        if not 0 <= opts.port <= 65535:
            raise UsageError(f"--port must be between 0 and 65535, got {opts.port}")
        from scrapy.utils.log import configure_logging

        from mediapipe.gallery import FeedError, read_feed
        from mediapipe.serving import THUMBNAIL_PREFIX, MediaServer
        from mediapipe.settings import MediaConfig, SettingError
        from mediapipe.store.registry import store_scheme

        assert self.settings is not None
        try:
            config = MediaConfig.from_settings(self.settings)
        except SettingError as exc:
            fail(self, str(exc))
            return
        store = str(config.store)
        if store_scheme(store) is not None:
            fail(
                self,
                f"scrapy media-serve serves a local store folder, and MEDIAPIPE_STORE = "
                f"{store!r} is not one: open its files at the bucket's URL "
                "(scrapy media-gallery FEED writes a page that does)",
            )
            return
        root = Path(store)
        if not root.is_dir():
            fail(self, f"the store {root} (MEDIAPIPE_STORE) is not a folder: run a crawl first")
            return
        gallery = None
        if args:
            feed = Path(args[0])
            results_field = config.results_field or "media"
            try:
                read_feed(feed, results_field)
            except FeedError as exc:
                fail(self, str(exc))
                return
            gallery = FeedGallery(feed, results_field, config.url_prefix, store)
        thumbnail_prefix = self.settings.get("MEDIAPIPE_THUMBS_URL_PREFIX") or THUMBNAIL_PREFIX
        try:
            server = MediaServer(
                root,
                url_prefix=config.url_prefix,
                thumbnail_prefix=thumbnail_prefix,
                gallery=gallery,
                port=opts.port,
            )
        except OSError as exc:
            fail(self, f"cannot listen on 127.0.0.1:{opts.port}: {exc.strerror or exc}")
            return
        configure_logging(self.settings)
        stop_on_signals(server)
        shown = f", the gallery of {args[0]} at /" if args else ""
        print(f"Serving {root} at {server.url}{shown} (Ctrl-C stops)", flush=True)
        try:
            server.serve_forever(poll_interval=0.2)
        finally:
            server.server_close()
        print("Stopped", flush=True)


def stop_on_signals(server: MediaServer) -> None:
    """Make SIGINT (Ctrl-C) and SIGTERM end ``serve_forever()`` instead of the process."""

    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever(), which runs in this very thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)


class FeedGallery:
    """The gallery page of a feed, rebuilt when the feed changes."""

    def __init__(self, feed: Path, results_field: str, url_prefix: str, store: str) -> None:
        self.feed = feed
        self.results_field = results_field
        self.url_prefix = url_prefix
        self.store = store
        self._lock = threading.Lock()
        self._built: tuple[tuple[int, int], bytes] | None = None

    def __call__(self) -> bytes:
        from mediapipe.gallery import FeedLinks, read_feed, render_gallery

        status = self.feed.stat()
        version = (status.st_mtime_ns, status.st_size)
        with self._lock:
            if self._built is None or self._built[0] != version:
                page = render_gallery(
                    read_feed(self.feed, self.results_field),
                    FeedLinks(self.url_prefix),
                    title=f"Media of {self.feed.name}",
                    store=self.store,
                )
                self._built = (version, page.encode("utf-8"))
            return self._built[1]
