"""``scrapy media-gallery FEED -o gallery.html``: a static HTML page of what a crawl stored."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from mediapipe.commands import fail

if TYPE_CHECKING:
    import argparse

    from scrapy.settings import BaseSettings

    from mediapipe.gallery import Feed, Links


class GalleryError(ValueError):
    """The gallery cannot be written: the message is one line for the user."""


class Command(ScrapyCommand):
    requires_project = False
    requires_crawler_process = False

    def syntax(self) -> str:
        return "FEED [-o FILE] [--media-base URL]"

    def short_desc(self) -> str:
        return "Write an HTML gallery of the media a crawl's feed lists"

    def long_desc(self) -> str:
        return (
            "Read a JSON lines or JSON feed of a crawl with the mediapipe add-on and write one "
            "self-contained HTML page of its stored images, audio and video, its failed "
            "sources and its totals. The page loads the files from the store "
            "(MEDIAPIPE_STORE): a local folder by relative URLs, a bucket at its address."
        )

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument(
            "-o",
            "--output",
            metavar="FILE",
            default="gallery.html",
            help="the HTML file to write (default: gallery.html)",
        )
        parser.add_argument(
            "--media-base",
            metavar="URL",
            help="the address that serves the store's root folder; the default is relative "
            "URLs for a local store, AWS_ENDPOINT_URL/bucket/prefix/ for s3://bucket/prefix/",
        )

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 1:
            raise UsageError("give one feed: scrapy media-gallery FEED -o gallery.html")
        from mediapipe.gallery import FeedError
        from mediapipe.settings import SettingError

        assert self.settings is not None
        try:
            summary, warnings = write_gallery(
                Path(args[0]), Path(opts.output), self.settings, opts.media_base
            )
        except (FeedError, GalleryError, SettingError) as exc:
            fail(self, str(exc))
            return
        print(summary)
        for warning in warnings:
            print(f"WARNING: {warning}", file=sys.stderr)


def write_gallery(
    feed_path: Path, output: Path, settings: BaseSettings, media_base: str | None
) -> tuple[str, list[str]]:
    """Write the gallery of ``feed_path`` to ``output``; return a summary and the warnings."""
    from mediapipe.gallery import read_feed, render_gallery, totals
    from mediapipe.gallery.feed import describe_skipped
    from mediapipe.settings import MediaConfig

    config = MediaConfig.from_settings(settings)
    if output.resolve() == feed_path.resolve():
        raise GalleryError(f"the gallery would overwrite its feed {feed_path}: choose another -o")
    feed = read_feed(feed_path, config.results_field or "media")
    links = media_links(str(config.store), settings, output, media_base)
    page = render_gallery(feed, links, title=f"Media of {feed_path.name}", store=str(config.store))
    try:
        # As Scrapy's feed exports do for -o: the folders are made.
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(page, "utf-8")
    except OSError as exc:
        raise GalleryError(f"cannot write the gallery {output}: {exc.strerror or exc}") from None
    counted = totals(feed)
    summary = (
        f"Wrote {output}: {counted.items} items, {counted.sources} sources, "
        f"{counted.stored_files} files stored ({counted.stored_bytes} bytes)"
    )
    warnings = []
    if feed.skipped:
        warnings.append(f"skipped {describe_skipped(feed.skipped)} of {feed_path}")
    missing = missing_files(feed, str(config.store)) if media_base is None else 0
    if missing:
        warnings.append(
            f"{missing} files the feed lists are not in the store {config.store}: "
            "is MEDIAPIPE_STORE the crawl's?"
        )
    return summary, warnings


def media_links(store: str, settings: BaseSettings, output: Path, media_base: str | None) -> Links:
    """How the gallery at ``output`` reaches the files of ``store``."""
    from mediapipe.gallery import BaseLinks, RelativeLinks
    from mediapipe.store.registry import store_scheme

    if media_base is not None:
        if urlsplit(media_base).scheme not in {"", "http", "https", "file"}:
            raise GalleryError(f"--media-base must be an http(s) or file URL, got {media_base!r}")
        return BaseLinks(media_base)
    scheme = store_scheme(store)
    if scheme is None:
        return RelativeLinks(Path(store), output.parent)
    if scheme == "s3":
        return BaseLinks(bucket_url(store, settings))
    raise GalleryError(
        f"MEDIAPIPE_STORE = {store!r}: give the address that serves it with --media-base URL"
    )


def bucket_url(store: str, settings: BaseSettings) -> str:
    """The address of an ``s3://bucket/prefix/`` store: at ``AWS_ENDPOINT_URL`` when set (path
    style, as MinIO and SeaweedFS serve), else Amazon S3's for the bucket."""
    from mediapipe.store.s3 import split_uri

    bucket, prefix = split_uri(store)
    prefix = quote(prefix, safe="/-._~")
    endpoint = settings.get("AWS_ENDPOINT_URL")
    if endpoint:
        return f"{str(endpoint).rstrip('/')}/{quote(bucket, safe='')}/{prefix}"
    region = settings.get("AWS_REGION_NAME")
    host = f"{bucket}.s3.{region}.amazonaws.com" if region else f"{bucket}.s3.amazonaws.com"
    return f"https://{host}/{prefix}"


def missing_files(feed: Feed, store: str) -> int:
    """How many stored files of the feed a local store lacks (0 for other stores)."""
    from mediapipe.store.registry import store_scheme

    if store_scheme(store) is not None:
        return 0
    paths = {entry.path for entry in feed.entries if entry.path is not None}
    paths.update(thumbnail.path for entry in feed.entries for thumbnail in entry.thumbnails)
    return sum(1 for path in paths if not (Path(store) / path).is_file())
