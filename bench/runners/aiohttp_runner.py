"""The ceiling: a plain aiohttp loop that streams every URL to a file, nothing else."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

from bench.runners.job import LoopLag

if TYPE_CHECKING:
    from bench.runners.job import Job, Meter

CHUNK = 64 * 1024


async def _fetch(
    session: aiohttp.ClientSession,
    gate: asyncio.Semaphore,
    url: str,
    target: Path,
    meter: Meter,
) -> None:
    async with gate:
        try:
            async with session.get(url) as response:
                if response.status != 200:
                    meter.record(url, None, "failed", f"http-{response.status}")
                    return
                with target.open("wb") as out:
                    async for chunk in response.content.iter_chunked(CHUNK):
                        out.write(chunk)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            target.unlink(missing_ok=True)
            meter.record(url, None, "failed", type(exc).__name__)
            return
    meter.downloaded()
    meter.record(url, target.name, "downloaded")


async def _main(job: Job, meter: Meter) -> None:
    urls = job.urls()
    out = Path(job.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meter.start()
    lag = LoopLag()
    lag.start()
    gate = asyncio.Semaphore(job.concurrency)
    connector = aiohttp.TCPConnector(limit=job.concurrency, limit_per_host=job.concurrency)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=600)
    headers = {"Accept-Encoding": "identity"}
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers=headers, auto_decompress=False
    ) as session:
        await asyncio.gather(
            *(
                _fetch(session, gate, url, out / f"{index:06d}", meter)
                for index, url in enumerate(urls)
            )
        )
    meter.outcome.stats["loop_lag_max_ms"] = lag.stop()
    meter.stop()


def run(job: Job, meter: Meter) -> None:
    asyncio.run(_main(job, meter))
