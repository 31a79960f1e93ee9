"""Several worker processes (``scrapy crawl worker``, scrapy-redis) on one bucket: each media
source downloaded once, a killed worker's sources finished by the others, a redis restart."""

from __future__ import annotations

import io
import time
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest
import redis
from PIL import Image

from spiders.shared_site import SharedSite
from tests.redisserver import RedisServer
from tests.workers import (
    KEY,
    bucket_files,
    push_start,
    start_workers,
    stats_of,
    wait_for,
    worker_settings,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.s3server import S3Server
    from tests.workers import Worker

pytestmark = pytest.mark.slow

PAGES, MEDIA = 300, 120


@pytest.fixture
def prefix() -> str:
    return f"workers-{uuid.uuid4().hex[:10]}"


def check_items_and_bucket(
    items: list[dict[str, Any]], site: SharedSite, s3: S3Server, prefix: str
) -> dict[str, str]:
    """Every record good, one path per source, and the bucket holding each file once with its
    exact bytes, and its thumbnail (the example project's MEDIAPIPE_THUMBS) with the size every
    worker's record gives; returns the path of every source."""
    paths: dict[str, str] = {}
    thumbnails: dict[str, dict[str, Any]] = {}
    for item in items:
        for record in item["media"]:
            assert record["status"] in ("downloaded", "uptodate"), record
            assert paths.setdefault(record["source"], record["path"]) == record["path"]
            thumbnail = record["thumbnails"]["small"]
            assert thumbnails.setdefault(record["path"], thumbnail) == thumbnail
        assert [url.split("?")[0] for url in item["images"]] == [
            "/media/" + record["path"] for record in item["media"]
        ]
    stored = bucket_files(s3, prefix)
    assert sorted(stored) == sorted(
        set(paths.values()) | {thumbnail["path"] for thumbnail in thumbnails.values()}
    )
    for source, path in paths.items():
        assert stored[path] == site.media_of(source.removeprefix(site.url)), path
    for thumbnail in thumbnails.values():
        with Image.open(io.BytesIO(stored[thumbnail["path"]])) as image:
            assert (image.format, image.size) == ("WEBP", (thumbnail["width"], thumbnail["height"]))
    return paths


def test_three_workers_download_every_source_once(
    tmp_path: Path, s3_server: S3Server, redis_server: RedisServer, prefix: str
) -> None:
    # Pages slow enough that the workers still find some queued after their first 5 s idle
    # check (the engine asks an idle scheduler again every 5 s).
    with SharedSite(PAGES, MEDIA, latency=0.1, page_latency=0.2) as site:
        workers = start_workers(3, tmp_path, worker_settings(redis_server, s3_server, prefix))
        push_start(redis_server, site)
        wait_for(workers)
        counts = site.media_counts()
    assert len(counts) == MEDIA
    assert set(counts.values()) == {1}, {path: n for path, n in counts.items() if n > 1}
    items = [item for worker in workers for item in worker.items()]
    pages = Counter(item["page"] for item in items)
    assert len(pages) == PAGES
    # The start URL is not filtered (as Scrapy's own start requests): its page comes twice.
    assert set(pages.values()) == {1} or pages.most_common(2)[1][1] == 1
    assert sum(1 for worker in workers if worker.items()) >= 2, "one worker did all the work"
    paths = check_items_and_bucket(items, site, s3_server, prefix)
    assert len(paths) == MEDIA
    # A worker meeting a source another one downloaded says uptodate, with the claimant's file
    # (from the bucket's index, or from the record in redis while the index is not written).
    stats = [stats_of(worker) for worker in workers]
    assert sum(s.get("mediapipe/claims/owned", 0) for s in stats) == MEDIA
    assert sum(s.get("mediapipe/stored_files", 0) for s in stats) == MEDIA
    assert sum(s.get("mediapipe/status/uptodate", 0) for s in stats) > 0
    for worker, worker_stats in zip(workers, stats, strict=True):
        records = [record for item in worker.items() for record in item["media"]]
        assert worker_stats.get("mediapipe/sources", 0) == len(records)
        assert f"mediapipe: {len(records)} sources in {len(worker.items())} items" in (
            worker.log_text()
        )
    totals = redis.Redis.from_url(redis_server.url, decode_responses=True).hgetall(f"{KEY}:stats")
    assert int(totals["claims/owned"]) == MEDIA
    assert int(totals["sources"]) == sum(len(item["media"]) for item in items)
    for worker in workers:
        log = worker.log_text()
        assert " ERROR: " not in log, log[-3000:]
        assert "ScrapyDeprecationWarning" not in log


def claims_of(redis_server: RedisServer, worker: Worker) -> set[str]:
    db = redis.Redis.from_url(redis_server.url, decode_responses=True)
    return {
        key.rpartition(":")[2]
        for key in db.scan_iter(f"{KEY}:claim:*")
        if str(db.get(key) or "").split(":")[1:2] == [str(worker.pid)]
    }


def test_a_killed_workers_sources_are_finished_by_the_others(
    tmp_path: Path, s3_server: S3Server, redis_server: RedisServer, prefix: str
) -> None:
    settings = worker_settings(redis_server, s3_server, prefix, MEDIAPIPE_CLAIM_LEASE=4)
    # More images, each on fewer pages: every worker finds images of its own to claim.
    with SharedSite(PAGES, 2 * MEDIA, latency=0.3, page_latency=0.2) as site:
        workers = start_workers(3, tmp_path, settings)
        push_start(redis_server, site)
        deadline = time.monotonic() + 60
        # Mid-crawl: two workers busy, the victim with downloads in flight.
        while True:
            assert time.monotonic() < deadline, "the workers never all got going"
            holders = {worker.pid: claims_of(redis_server, worker) for worker in workers}
            if len(site.media_counts()) >= 20 and sum(1 for held in holders.values() if held) >= 2:
                break
            time.sleep(0.05)
        victim = max(workers, key=lambda worker: len(holders[worker.pid]))
        held = holders[victim.pid]
        victim.kill()
        held |= claims_of(redis_server, victim)
        others = [worker for worker in workers if worker is not victim]
        wait_for(others)
        counts = site.media_counts()
    survivors = [item for worker in others for item in worker.items()]
    paths = check_items_and_bucket(survivors, site, s3_server, prefix)
    twice = {path for path, n in counts.items() if n > 1}
    # Only what the killed worker had in flight was fetched again: its downloads and, with a
    # bucket, the downloaded bodies waiting for their upload, each at most its concurrency.
    assert len(twice) <= 2 * settings["CONCURRENT_REQUESTS"]
    assert all(n <= 2 for n in counts.values())
    assert {_key(site.url + path) for path in twice} <= held
    # The sources it held that the others met were finished by them, with good files (checked
    # above); whether a claim was taken over while held or after it lapsed is up to timing.
    met = {source for source in paths if _key(source) in held}
    assert met, "the survivors never met a source the killed worker held"


def _key(source: str) -> str:
    from mediapipe.naming import source_hash

    return source_hash(source)


@pytest.fixture
def persistent_redis(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis-aof", persistent=True) as running:
        yield running


def test_a_redis_restart_mid_crawl_loses_no_item_and_corrupts_no_file(
    tmp_path: Path, s3_server: S3Server, persistent_redis: RedisServer, prefix: str
) -> None:
    settings = worker_settings(persistent_redis, s3_server, prefix)
    with SharedSite(PAGES, MEDIA, latency=0.1, page_latency=0.02) as site:
        workers = start_workers(2, tmp_path, settings)
        push_start(persistent_redis, site)
        deadline = time.monotonic() + 60
        while len(site.media_counts()) < 20:
            assert time.monotonic() < deadline, "the workers never got going"
            time.sleep(0.05)
        persistent_redis.stop()
        time.sleep(2)
        persistent_redis.start()
        wait_for(workers)
        counts = site.media_counts()
        fetched = {site.url + path for path in site.counts if path.startswith("/p/")}
    items = [item for worker in workers for item in worker.items()]
    pages = Counter(item["page"] for item in items)
    # No item is lost: every page a worker fetched has its item.
    assert set(pages) == fetched
    # scrapy-redis drops the requests it cannot queue while redis is away (README, "Several
    # workers"): a page only such links led to is not fetched. The pages are linked from
    # several others, so that costs few if any.
    assert len(fetched) >= PAGES * 0.95, f"{PAGES - len(fetched)} pages never fetched"
    check_items_and_bucket(items, site, s3_server, prefix)
    sources = {r["source"].removeprefix(site.url) for item in items for r in item["media"]}
    assert set(counts) == sources
    # While redis was away, sources were downloaded without claims: only those can have been
    # fetched twice, and each worker says how many it fetched so.
    unclaimed = sum(stats_of(worker).get("mediapipe/claims/unavailable", 0) for worker in workers)
    assert unclaimed > 0
    assert sum(n - 1 for n in counts.values()) <= unclaimed
    # One WARNING line per worker that met the outage, then DEBUG.
    warned = [worker.log_text().count("cannot be reached") for worker in workers]
    assert max(warned) == 1
