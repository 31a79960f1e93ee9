"""``copy_media``: the contract as one awaitable call, run on Scrapy's downloader."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from scrapy import Request, Spider
from scrapy.crawler import AsyncCrawlerRunner
from scrapy.settings import Settings
from scrapy.utils.reactor import is_reactor_installed

from mediapipe.addon import streaming_handler
from mediapipe.middleware import MediaDownloaderMiddleware
from mediapipe.options import SPIDER_ATTRIBUTE, CallOptions
from mediapipe.pipeline import MediaPipeline
from mediapipe.settings import DEFAULTS, MediaConfig
from mediapipe.store.registry import join_store

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
    from pathlib import Path

    from scrapy.http import Response

THUMBNAIL_FOLDER = "thumbnails"
THUMBNAIL_PREFIX = "/thumbnail/"
_RESULTS_FIELD = "media"


class _CopyMediaSpider(Spider):
    """Hands one item to the pipeline; the crawl ends when the item is done."""

    name = "mediapipe_copy_media"

    def __init__(self, item: dict[str, Any], call: CallOptions, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._item = item
        setattr(self, SPIDER_ATTRIBUTE, call)

    async def start(self) -> AsyncIterator[Request]:
        # The item comes from a callback: the engine notices at once when a callback's items
        # are done, but items yielded by start() only at its next 5-second heartbeat.
        yield Request("data:,", callback=self._emit, dont_filter=True)

    def _emit(self, response: Response) -> Iterator[dict[str, Any]]:
        yield self._item


async def copy_media(
    images: Sequence[str | None] | str,
    *,
    tags: Sequence[Any] | None = None,
    alt: str | Sequence[str | None] | None = None,
    cookies: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    proxy: str | None = None,
    add_url: bool | str = True,
    target: str | None = None,
    thumbnail: bool = False,
    ssl: bool | None = None,
    timeout: float | None = None,
    return_target: bool = False,
    media_dir: str | Path | None = None,
    settings: Mapping[str, Any] | None = None,
) -> list[Any]:
    """Store every source of ``images`` and return one local URL (or the source) per input.

    With ``return_target`` each entry is a ``(url, path)`` tuple, ``path`` being the stored
    file relative to the store (``media_dir``), as in a ``media`` record, or None when the
    source was not stored. ``settings`` are Scrapy and ``MEDIAPIPE_*`` settings for this call
    only.
    """
    sources: list[Any] = [images] if isinstance(images, str) else list(images)
    if target is not None and len(sources) != 1:
        raise ValueError(f"copy_media(target=...) stores exactly one source; got {len(sources)}")
    if not sources:
        return []
    crawl_settings = _crawl_settings(
        settings or {},
        add_url=add_url,
        thumbnail=thumbnail,
        ssl=ssl,
        timeout=timeout,
        media_dir=media_dir,
    )
    call = CallOptions(
        headers=dict(headers or {}), cookies=dict(cookies or {}), proxy=proxy, target=target
    )
    fields = crawl_settings
    item: dict[str, Any] = {fields["MEDIAPIPE_URLS_FIELD"]: sources}
    if tags is not None:
        item[fields["MEDIAPIPE_TAGS_FIELD"]] = tags
    if alt is not None:
        item[fields["MEDIAPIPE_ALT_FIELD"]] = alt
    # Bad settings raise here, before a crawler opens download handlers it would not close.
    MediaConfig.from_settings(Settings(crawl_settings))
    runner = AsyncCrawlerRunner(crawl_settings)
    with _script_logging():
        await runner.crawl(_CopyMediaSpider, item=item, call=call)
    records = item.get(_RESULTS_FIELD)
    if records is None or len(records) != len(sources):
        raise RuntimeError(
            "copy_media: the media pipeline did not process the sources "
            "(see the errors logged above)"
        )
    if return_target:
        # Relative to the caller's store, as a record's ``path`` is: a thumbnail is in a
        # folder of that store.
        folder = f"{THUMBNAIL_FOLDER}/" if thumbnail else ""
        return [
            (record["url"], folder + record["path"] if record["path"] else None)
            for record in records
        ]
    return [record["url"] for record in records]


class _DropExperimentalNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "is experimental" not in record.getMessage()


@contextmanager
def _script_logging() -> Iterator[None]:
    """Show media failures in a script that configured no logging, as a crawl log would.

    A crawl attaches a counting handler to the root logger, which hides Python's last-resort
    output; without a handler of the script's own, failures would go unreported. The notice
    that the download handler chosen here (Scrapy's aiohttp one, the handler Scrapy uses
    without a Twisted reactor) is experimental is dropped: the choice is this function's.
    """
    handler: logging.Handler | None = None
    media_logger = logging.getLogger("mediapipe")
    if not logging.getLogger().handlers and not media_logger.handlers:
        handler = logging.StreamHandler()
        handler.setLevel(logging.WARNING)
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        media_logger.addHandler(handler)
    notice = _DropExperimentalNotice()
    handlers_logger = logging.getLogger("scrapy.core.downloader.handlers._base_streaming")
    handlers_logger.addFilter(notice)
    try:
        yield
    finally:
        handlers_logger.removeFilter(notice)
        if handler is not None:
            media_logger.removeHandler(handler)


def _crawl_settings(
    user: Mapping[str, Any],
    *,
    add_url: bool | str,
    thumbnail: bool,
    ssl: bool | None,
    timeout: float | None,
    media_dir: str | Path | None,
) -> dict[str, Any]:
    merged: dict[str, Any] = {
        "TWISTED_REACTOR_ENABLED": is_reactor_installed(),
        "TELNETCONSOLE_ENABLED": False,
        "LOGSTATS_INTERVAL": 0,
        "MEDIAPIPE_ADD_URL": add_url,
        # A call stores a handful of files: starting a writer process would cost it more
        # (about 0.2 s) than the process saves.
        "MEDIAPIPE_WRITER_PROCESS": False,
        # Frozen objects are never collected: in a program that calls copy_media again and
        # again, an earlier call's garbage not yet collected would stay for good.
        "MEDIAPIPE_FREEZE_GC": False,
    }
    merged.update(user)
    for name in ("MEDIAPIPE_URLS_FIELD", "MEDIAPIPE_TAGS_FIELD", "MEDIAPIPE_ALT_FIELD"):
        merged.setdefault(name, DEFAULTS[name])
    store = str(
        media_dir
        if media_dir is not None
        else merged.get("MEDIAPIPE_STORE") or DEFAULTS["MEDIAPIPE_STORE"]
    )
    if thumbnail:
        store = join_store(store, THUMBNAIL_FOLDER)
        merged["MEDIAPIPE_URL_PREFIX"] = THUMBNAIL_PREFIX
        merged["MEDIAPIPE_ADD_URL"] = False
    merged["MEDIAPIPE_STORE"] = store
    merged["MEDIAPIPE_RESULTS_FIELD"] = _RESULTS_FIELD
    if ssl is not None:
        merged["DOWNLOAD_VERIFY_CERTIFICATES"] = bool(ssl)
    if timeout is not None:
        merged["DOWNLOAD_TIMEOUT"] = timeout
    handler = streaming_handler(Settings(merged))
    if handler is not None:
        merged["DOWNLOAD_HANDLERS"] = {
            "http": handler,
            "https": handler,
            **merged.get("DOWNLOAD_HANDLERS", {}),
        }
    merged["ITEM_PIPELINES"] = {MediaPipeline: 1}
    merged["DOWNLOADER_MIDDLEWARES"] = {MediaDownloaderMiddleware: 950}
    return merged
