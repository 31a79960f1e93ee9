"""Claims in a real redis-server (``MEDIAPIPE_CLAIMS``): each source resolved by the worker that
claimed it, the others given its record; leases that lapse, and a redis that goes away."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
import pytest_twisted
import redis
from scrapy import signals
from scrapy.settings import Settings
from scrapy.utils.test import get_crawler
from twisted.internet.defer import Deferred

from mediapipe.coordination.claims import ClaimBoard, SharedRecord
from mediapipe.coordination.config import ClaimConfig
from mediapipe.naming import source_hash
from mediapipe.records import MediaRecord
from mediapipe.settings import SettingError
from mediapipe.stats import MediaStats
from tests import media
from tests.conftest import ItemsSpider
from tests.storecheck import stored_files

if TYPE_CHECKING:
    from tests.conftest import Crawl
    from tests.mockserver import MockServer
    from tests.redisserver import RedisServer

PREFIX = "items:mediapipe"  # the default MEDIAPIPE_REDIS_KEY for the spider "items"


def claims_on(redis_server: RedisServer, **extra: Any) -> dict[str, Any]:
    return {"MEDIAPIPE_CLAIMS": True, "MEDIAPIPE_REDIS_URL": redis_server.url, **extra}


def client(redis_server: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(redis_server.url, decode_responses=True)


def done_record(db: redis.Redis, source: str) -> dict[str, Any]:
    text = db.get(f"{PREFIX}:done:{source_hash(source)}")
    assert text is not None, f"no shared record for {source}"
    return dict(json.loads(text))


@pytest_twisted.ensureDeferred
async def test_the_claimant_downloads_and_shares_its_records(
    crawl: Crawl, server: MockServer, redis_server: RedisServer
) -> None:
    sources = [f"{server.url}/img/png?r={n}" for n in range(5)]
    result = await crawl([{"images": sources}], claims_on(redis_server))
    assert [record["status"] for record in result.items[0]["media"]] == ["downloaded"] * 5
    assert result.stat("mediapipe/claims/owned") == 5
    db = client(redis_server)
    for source, record in zip(sources, result.items[0]["media"], strict=True):
        shared = done_record(db, source)
        assert shared["status"] == "downloaded"
        assert shared["path"] == record["path"]
        assert shared["sha256"] == record["sha256"]
        assert shared["worker"].split(":")[1].isdigit()  # host:pid:tag
    # Given up once resolved: no claim is left behind.
    assert db.keys(f"{PREFIX}:claim:*") == []
    # Every worker's stats are added up in redis.
    totals = db.hgetall(f"{PREFIX}:stats")
    assert totals["sources"] == "5"
    assert totals["status/downloaded"] == "5"


@pytest_twisted.ensureDeferred
async def test_another_worker_gets_the_shared_records_without_a_request(
    crawl: Crawl, server: MockServer, redis_server: RedisServer, tmp_path: Any
) -> None:
    sources = [f"{server.url}/img/png?r={n}" for n in range(4)]
    first = await crawl([{"images": sources}], claims_on(redis_server))
    requests = server.count("/img/png")
    assert requests == 4
    # A second worker: another store folder even, so that only redis can know the records.
    crawl.store = tmp_path / "other-store"
    second = await crawl([{"images": sources}], claims_on(redis_server))
    assert server.count("/img/png") == requests
    records = second.items[0]["media"]
    assert [record["status"] for record in records] == ["uptodate"] * 4
    assert [r["path"] for r in records] == [r["path"] for r in first.items[0]["media"]]
    assert second.items[0]["images"] == first.items[0]["images"]
    assert second.stat("mediapipe/claims/shared") == 4
    assert second.stat("mediapipe/claims/owned") == 0
    totals = client(redis_server).hgetall(f"{PREFIX}:stats")
    assert totals["sources"] == "8"
    assert totals["status/uptodate"] == "4"


@pytest_twisted.ensureDeferred
async def test_a_source_held_elsewhere_is_waited_for_and_its_record_taken(
    crawl: Crawl, server: MockServer, redis_server: RedisServer
) -> None:
    source = f"{server.url}/img/png?held"
    key = source_hash(source)
    db = client(redis_server)
    db.set(f"{PREFIX}:claim:{key}", "other-host:1:abcd", px=30_000)
    shared = SharedRecord(
        "other-host:1:abcd", "downloaded", path="elsewhere.png", mime="image/png", size=10,
        sha256="ab" * 32, width=1, height=1,
    )  # fmt: skip

    def other_worker_finishes() -> None:
        time.sleep(0.6)
        db.set(f"{PREFIX}:done:{key}", shared.dumps())
        db.delete(f"{PREFIX}:claim:{key}")

    threading.Thread(target=other_worker_finishes, daemon=True).start()
    result = await crawl([{"images": [source]}], claims_on(redis_server))
    record = result.items[0]["media"][0]
    assert record["status"] == "uptodate"
    assert record["path"] == "elsewhere.png"
    assert record["sha256"] == "ab" * 32
    assert result.items[0]["images"][0].startswith("/media/elsewhere.png?url=")
    assert server.count("/img/png") == 0
    assert result.stat("mediapipe/claims/shared") == 1


@pytest_twisted.ensureDeferred
async def test_a_lapsed_claim_is_taken_over(
    crawl: Crawl, server: MockServer, redis_server: RedisServer
) -> None:
    source = f"{server.url}/img/png?killed-owner"
    db = client(redis_server)
    # A worker that was killed: its claim is never renewed and lapses in a second.
    db.set(f"{PREFIX}:claim:{source_hash(source)}", "gone-host:1:dead", px=1000)
    started = time.monotonic()
    result = await crawl([{"images": [source]}], claims_on(redis_server))
    assert time.monotonic() - started >= 0.9
    assert result.items[0]["media"][0]["status"] == "downloaded"
    assert server.count("/img/png") == 1
    assert result.stat("mediapipe/claims/taken_over") == 1
    assert result.stat("mediapipe/claims/owned") == 0
    assert done_record(db, source)["worker"] != "gone-host:1:dead"


@pytest_twisted.ensureDeferred
async def test_a_shared_failure_is_the_same_failure_with_a_warning(
    crawl: Crawl, server: MockServer, redis_server: RedisServer
) -> None:
    source = f"{server.url}/img/png?failed-elsewhere"
    db = client(redis_server)
    failed = SharedRecord("w2:7:beef", "failed", reason="http-404")
    db.set(f"{PREFIX}:done:{source_hash(source)}", failed.dumps())
    result = await crawl([{"images": [source]}], claims_on(redis_server))
    record = result.items[0]["media"][0]
    assert (record["status"], record["reason"], record["path"]) == ("failed", "http-404", None)
    assert result.items[0]["images"] == [source]
    assert result.stat("mediapipe/failed/http-404") == 1
    assert server.count("/img/png") == 0
    assert result.warnings == [f"Media (failed: http-404): {source} (as worker w2:7:beef found)"]


@pytest_twisted.ensureDeferred
async def test_failures_are_shared_too(
    crawl: Crawl, server: MockServer, redis_server: RedisServer
) -> None:
    source = f"{server.url}/status/404"
    await crawl([{"images": [source]}], claims_on(redis_server))
    shared = done_record(client(redis_server), source)
    assert (shared["status"], shared["reason"]) == ("failed", "http-404")
    assert "path" not in shared


@pytest_twisted.ensureDeferred
async def test_an_unreadable_shared_record_is_replaced_by_a_good_one(
    crawl: Crawl, server: MockServer, redis_server: RedisServer
) -> None:
    source = f"{server.url}/img/png?garbled"
    db = client(redis_server)
    db.set(f"{PREFIX}:done:{source_hash(source)}", '{"status": "downloaded"')
    result = await crawl([{"images": [source]}], claims_on(redis_server))
    assert result.items[0]["media"][0]["status"] == "downloaded"
    assert server.count("/img/png") == 1
    assert len(result.warnings) == 1
    assert "is unreadable" in result.warnings[0]
    assert done_record(db, source)["status"] == "downloaded"


@pytest_twisted.ensureDeferred
async def test_a_long_download_keeps_its_claim(
    crawl: Crawl, server: MockServer, redis_server: RedisServer
) -> None:
    source = f"{server.url}/slow"  # SLOW_SECONDS = 3, three leases of one second
    db = client(redis_server)
    holders: list[Any] = []

    def watch() -> None:
        time.sleep(2.2)
        holders.append(db.get(f"{PREFIX}:claim:{source_hash(source)}"))

    threading.Thread(target=watch, daemon=True).start()
    result = await crawl([{"images": [source]}], claims_on(redis_server, MEDIAPIPE_CLAIM_LEASE=1))
    assert holders != [None], "the claim lapsed during the download"
    assert len(holders) == 1
    assert result.stat("mediapipe/claims/lost") == 0
    assert result.stat("mediapipe/claims/owned") == 1


@pytest_twisted.ensureDeferred
async def test_a_claim_lost_mid_download_is_reported(
    crawl: Crawl, server: MockServer, redis_server: RedisServer
) -> None:
    source = f"{server.url}/slow"
    db = client(redis_server)

    def steal() -> None:
        time.sleep(0.8)
        db.set(f"{PREFIX}:claim:{source_hash(source)}", "thief:2:cafe", px=60_000)

    threading.Thread(target=steal, daemon=True).start()
    result = await crawl([{"images": [source]}], claims_on(redis_server, MEDIAPIPE_CLAIM_LEASE=1))
    assert result.items[0]["media"][0]["status"] == "downloaded"
    assert result.stat("mediapipe/claims/lost") == 1
    assert [line for line in result.warnings if "lapsed" in line] == [
        "1 claims of this worker lapsed before their downloads ended (stat "
        "mediapipe/claims/lost): other workers may fetch those sources too; a lease longer "
        "than the reactor's longest stall (MEDIAPIPE_CLAIM_LEASE) avoids it"
    ]
    # The record is still published; the other holder's claim is left to it.
    assert done_record(db, source)["status"] == "downloaded"
    assert db.get(f"{PREFIX}:claim:{source_hash(source)}") == "thief:2:cafe"


@pytest_twisted.ensureDeferred
async def test_redis_gone_mid_crawl_costs_claims_not_files(
    crawl: Crawl, server: MockServer, redis_server: RedisServer
) -> None:
    sources = [f"{server.url}/img/png?r={n}" for n in range(3)]

    class RedisGoesAway(ItemsSpider):
        @classmethod
        def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> RedisGoesAway:
            spider = super().from_crawler(crawler, *args, **kwargs)
            # After the pipeline connected (open_spider), before the first item.
            crawler.signals.connect(spider.stop_redis, signal=signals.spider_opened)
            return spider

        def stop_redis(self) -> None:
            redis_server.stop()

    result = await crawl([{"images": sources}], claims_on(redis_server), spider=RedisGoesAway)
    records = result.items[0]["media"]
    assert [record["status"] for record in records] == ["downloaded"] * 3
    assert {name: data for name, data in stored_files(crawl.store).items()} == {
        record["path"]: media.PNG for record in records
    }
    assert result.stat("mediapipe/claims/unavailable") >= 3
    unavailable = [line for line in result.warnings if "cannot be reached" in line]
    assert len(unavailable) == 1
    assert f"redis at {redis_server.url} cannot be reached" in unavailable[0]
    assert "downloading its sources without claims" in unavailable[0]


@pytest_twisted.ensureDeferred
async def test_no_redis_at_start_stops_the_crawl_with_one_line(
    crawl: Crawl, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    redis_server.stop()
    crawler = get_crawler(ItemsSpider, crawl.settings(claims_on(redis_server)))
    with pytest.raises(SettingError, match=r"MEDIAPIPE_CLAIMS: redis at .* does not answer"):
        await crawler.crawl(items=[{"images": ["http://example.com/a.png"]}])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"MEDIAPIPE_CLAIMS": "yes"}, "MEDIAPIPE_CLAIMS must be True or False"),
        ({"MEDIAPIPE_REDIS_URL": "http://127.0.0.1:6379"}, "MEDIAPIPE_REDIS_URL must be a redis"),
        ({"MEDIAPIPE_REDIS_KEY": "%(name)s:media"}, "MEDIAPIPE_REDIS_KEY may hold %"),
        ({"MEDIAPIPE_REDIS_KEY": ""}, "MEDIAPIPE_REDIS_KEY must be a non-empty string"),
        ({"MEDIAPIPE_CLAIM_LEASE": 0.5}, "MEDIAPIPE_CLAIM_LEASE must be at least 1 second"),
        ({"MEDIAPIPE_CLAIM_LEASE": "soon"}, "MEDIAPIPE_CLAIM_LEASE must be a number"),
        ({"MEDIAPIPE_CLAIM_KEEP": -1}, "MEDIAPIPE_CLAIM_KEEP must be a number >= 0"),
    ],
)
def test_bad_claim_settings_are_named(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingError, match=message.replace("(", r"\(").replace("%", "%")):
        ClaimConfig.from_settings(Settings({"MEDIAPIPE_CLAIMS": True, **settings}), "items")


def test_claim_settings_default_to_scrapy_redis_connection() -> None:
    assert ClaimConfig.from_settings(Settings({}), "items") is None
    config = ClaimConfig.from_settings(
        Settings({"MEDIAPIPE_CLAIMS": True, "REDIS_URL": "redis://10.0.0.5:6380/2"}), "shop"
    )
    assert config is not None
    assert (config.redis_url, config.key_prefix) == ("redis://10.0.0.5:6380/2", "shop:mediapipe")
    assert (config.lease_s, config.keep_s) == (30.0, 7 * 86400)
    by_host = ClaimConfig.from_settings(
        Settings({"MEDIAPIPE_CLAIMS": True, "REDIS_HOST": "cache", "REDIS_PORT": 7000}), "s"
    )
    assert by_host is not None
    assert by_host.redis_url == "redis://cache:7000"
    own = ClaimConfig.from_settings(
        Settings(
            {
                "MEDIAPIPE_CLAIMS": True,
                "REDIS_URL": "redis://ignored:1",
                "MEDIAPIPE_REDIS_URL": "redis://127.0.0.1:7001/0",
                "MEDIAPIPE_REDIS_KEY": "media:%(spider)s",
                "MEDIAPIPE_CLAIM_KEEP": 0,
            }
        ),
        "s",
    )
    assert own is not None
    assert (own.redis_url, own.key_prefix, own.keep_s) == ("redis://127.0.0.1:7001/0", "media:s", 0)


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '{"worker": "w", "status": "stolen", "path": "a.png"}',
        '{"worker": "w", "status": "downloaded"}',
        '{"worker": "w", "status": "failed"}',
        '{"worker": "w", "status": "failed", "reason": "http-404", "path": "a.png"}',
        '{"worker": "w", "status": "downloaded", "path": "a.png", "size": "10"}',
        '{"status": "downloaded", "path": "a.png"}',
    ],
)
def test_unreadable_shared_records_are_refused(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each one for its own reason
        SharedRecord.loads(text)


def test_a_shared_record_reads_back_as_written() -> None:
    record = SharedRecord(
        "h:1:t", "data", path="a/b.png", mime="image/png", size=3, sha256="00" * 32,
        width=2, height=1, credentials=True,
    )  # fmt: skip
    assert SharedRecord.loads(record.dumps()) == record


@pytest_twisted.ensureDeferred
async def test_a_claim_published_while_its_renewal_runs_is_not_lost(
    redis_server: RedisServer,
) -> None:
    config = ClaimConfig.from_settings(Settings(claims_on(redis_server)), "items")
    assert config is not None
    stats = MediaStats(None)
    board = ClaimBoard(config, stats)

    record = MediaRecord(source=None, url=None, path="a.png", status="downloaded")

    async def race() -> None:
        await board.open()
        try:
            assert await board.claim("k1") is True
            renew = board._scripts["RENEW"]

            async def renew_after_the_download_ended(keys: Any, args: Any) -> Any:
                # The renewal took its list of claims; before redis runs it, the download ends:
                # its record is published and its claim deleted.
                board.publish("k1", record)
                await board._flush()
                return await renew(keys=keys, args=args)

            board._scripts["RENEW"] = renew_after_the_download_ended
            await board._renew()
        finally:
            await board.close()

    # redis's asyncio client wants to run inside an asyncio task, as in a crawl.
    await Deferred.fromFuture(asyncio.ensure_future(race()))
    assert stats.counts["claims/lost"] == 0
    assert stats.counts["claims/owned"] == 1
    done = client(redis_server).get(f"{PREFIX}:done:k1")
    assert done is not None
    assert SharedRecord.loads(str(done)).path == "a.png"
