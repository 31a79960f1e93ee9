"""gpt4free's ``copy_media`` (PyPI ``g4f==8.8.6``), called the way its users call it.

Runs under ``bench/.work/venv-g4f``'s interpreter, which has g4f (and its aiohttp) but not
Scrapy or mediapipe. ``g4f.image.copy_images.copy_media(images, cookies=None, headers=None,
proxy=None, alt=None, tags=None, add_url=True, target=None, thumbnail=False, ssl=None,
timeout=None, return_target=False)`` opens one ``aiohttp.ClientSession`` per call (its default
connector: up to 100 connections, none kept between calls), downloads every URL of the call at
once with ``asyncio.gather``, streams each body (``iter_any``) into a file of the media folder
named ``<Last-Modified as epoch>_<first 16 hex of SHA-256 of the URL><ext>`` (the extension
from the URL, else from the content type, else from the file's magic bytes, renaming the
file), and returns, in the order given, ``/media/<name>?url=<quoted source>`` for each copied
URL and the source URL itself for each failure (the error goes to ``g4f.debug``).

As a user sets it up here: the media folder is the job's fresh ``out_dir`` (the module's
``images_dir`` and ``media_dir``, which ``get_media_dir`` reads), no cookies, headers or proxy
(the defaults), ``ssl=False`` (plain http), and g4f's debug log on, so that a failure's error
is in the run's log. ``copy_media`` refuses every URL whose host resolves to a private or
loopback address (``g4f.image.is_safe_url``); its own ``allow_local=True`` lets the local
nginx through and nothing else changes (the check still runs for every URL).
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import g4f.debug
import g4f.image
import g4f.image.copy_images as copy_images

from bench.runners.job import LoopLag

if TYPE_CHECKING:
    from collections.abc import Iterator

    from bench.runners.job import Job, Meter

BATCH = 10  # sources per copy_media call
PREFIX = "/media/"


def calls_in_flight(concurrency: int) -> int:
    """Calls at once: each opens one connection per source of its batch, so the fewest whole
    batches that cover the concurrency (16 connections: 2 calls, at most 20 at once)."""
    return max(1, -(-concurrency // BATCH))


def _configure(out_dir: str) -> None:
    copy_images.images_dir = out_dir
    copy_images.media_dir = out_dir
    copy_images.is_safe_url = functools.partial(g4f.image.is_safe_url, allow_local=True)
    g4f.debug.version_check = False
    g4f.debug.enable_logging()


def _record(meter: Meter, url: str, result: Any) -> None:
    """Map one source to the file copy_media says it made (checked by the parent)."""
    if not isinstance(result, str) or not result.startswith(PREFIX):
        meter.record(url, None, "failed", "copy_media returned the source URL (see log)")
        return
    path, _, query = result.partition("?")
    if query != "url=" + quote(url):
        meter.record(url, None, "failed", f"copy_media returned {result!r} for it")
        return
    meter.downloaded()
    meter.record(url, path[len(PREFIX) :], "downloaded")


async def _worker(batches: Iterator[list[str]], meter: Meter) -> None:
    for batch in batches:
        results = await copy_images.copy_media(batch, ssl=False)
        for url, result in zip(batch, results, strict=True):
            _record(meter, url, result)


async def _main(job: Job, meter: Meter) -> None:
    urls = job.urls()
    for url in urls:  # only ever the benchmark's nginx
        if urlsplit(url).hostname != "127.0.0.1":
            raise ValueError(f"{url} is not on 127.0.0.1")
    _configure(job.out_dir)
    copy_images.ensure_media_dir()
    batches = iter([urls[first : first + BATCH] for first in range(0, len(urls), BATCH)])
    meter.start()
    lag = LoopLag()
    lag.start()
    # The workers share one iterator: each takes the next batch when its call returns.
    workers = calls_in_flight(job.concurrency)
    await asyncio.gather(*(_worker(batches, meter) for _ in range(workers)))
    meter.outcome.stats["loop_lag_max_ms"] = lag.stop()
    meter.outcome.stats["copy_media_calls"] = -(-len(urls) // BATCH)
    meter.outcome.stats["calls_in_flight"] = workers
    meter.stop()


def run(job: Job, meter: Meter) -> None:
    asyncio.run(_main(job, meter))
