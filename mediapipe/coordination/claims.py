"""Claims on media sources in redis, so that several crawl processes download each source once.

A worker claims a source before it resolves it: a key that holds its name and expires unless
renewed (the lease). Other workers that meet the source while it is claimed wait for the record
the claimant publishes when it is done, and give their items that record. A worker killed
mid-download stops renewing: its claims lapse and the next worker to ask takes them over.

redis cannot be reached: nothing is lost, the source is resolved by this worker without a
claim (another worker may fetch it too), one WARNING line says so and a stat counts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mediapipe.coordination import scripts
from mediapipe.coordination.totals import SharedTotals
from mediapipe.settings import SettingError
from mediapipe.store.processes import RUN_TAG

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from mediapipe.coordination.config import ClaimConfig
    from mediapipe.records import MediaRecord
    from mediapipe.stats import MediaStats

logger = logging.getLogger(__name__)

# How often the sources another worker holds are asked about again.
POLL_S = 0.2
# Sources per script call: a script holds redis for every other client while it runs.
BATCH = 256
# A redis that does not answer in this time is treated as unreachable.
TIMEOUT_S = 10.0
# Seconds between two additions of this worker's stats to the totals in redis.
TOTALS_S = 5.0

_TEXT_FIELDS = ("path", "reason", "mime", "sha256")
_INT_FIELDS = ("size", "width", "height")
_STATUSES = frozenset({"downloaded", "uptodate", "data", "failed"})


_BOARDS = itertools.count()


def worker_id() -> str:
    """This crawl among all workers: host, pid, a tag that a reused pid does not share, and,
    for a second crawl in the same process, its number."""
    number = next(_BOARDS)
    suffix = f"/{number}" if number else ""
    return f"{socket.gethostname()}:{os.getpid()}:{RUN_TAG}{suffix}"


@dataclass(frozen=True, slots=True)
class SharedRecord:
    """The record a worker published for a source: a stored file, or a failure."""

    worker: str
    status: str
    path: str | None = None
    reason: str | None = None
    mime: str | None = None
    size: int | None = None
    sha256: str | None = None
    width: int | None = None
    height: int | None = None
    credentials: bool = False

    @classmethod
    def of(cls, record: MediaRecord, worker: str) -> SharedRecord:
        return cls(
            worker, record.status, record.path, record.reason, record.mime, record.size,
            record.sha256, record.width, record.height, record.credentials,
        )  # fmt: skip

    def dumps(self) -> str:
        fields = {name: getattr(self, name) for name in self.__slots__}
        return json.dumps({k: v for k, v in fields.items() if v is not None}, sort_keys=True)

    @classmethod
    def loads(cls, text: str) -> SharedRecord:
        """Raises ValueError for what no worker of this version writes."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("status") not in _STATUSES:
            raise ValueError("no known status")
        if not isinstance(data.get("worker"), str):
            raise ValueError("no worker")
        values: dict[str, Any] = {"worker": data["worker"], "status": data["status"]}
        for name in _TEXT_FIELDS:
            if not isinstance(data.get(name, ""), str):
                raise ValueError(f"{name} is not a string")
            values[name] = data.get(name)
        for name in _INT_FIELDS:
            value = data.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"{name} is not an integer")
            values[name] = value
        values["credentials"] = data.get("credentials") is True
        failed = values["status"] == "failed"
        if failed != (values["reason"] is not None) or failed == bool(values["path"]):
            raise ValueError("a failure has a reason and no path, a stored file a path")
        return cls(**values)


class ClaimedElsewhere(Exception):
    """Another worker holds the source (``record`` None) or has resolved it."""

    def __init__(self, record: SharedRecord | None) -> None:
        super().__init__("claimed by another worker")
        self.record = record


class ClaimBoard:
    """This worker's claims, the sources it waits for, and its stats' share of the totals."""

    def __init__(self, config: ClaimConfig, stats: MediaStats, worker: str | None = None) -> None:
        self.config = config
        self.stats = stats
        self.worker = worker or worker_id()
        self._client: Any = None
        self._scripts: dict[str, Any] = {}
        self._lease_ms = round(config.lease_s * 1000)
        self._owned: set[str] = set()
        self._asked: dict[str, list[asyncio.Future[SharedRecord | bool]]] = {}
        self._waiting: dict[str, list[asyncio.Future[SharedRecord | bool]]] = {}
        self._to_publish: dict[str, str] = {}
        self._to_release: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._warned: set[str] = set()
        self._totals = SharedTotals(stats.counts)

    # -- opening and closing ---------------------------------------------------------------

    async def open(self) -> None:
        """Connect, or stop the crawl at start with a line that says what to fix."""
        import redis.asyncio as aioredis

        self._client = aioredis.Redis.from_url(
            self.config.redis_url,
            socket_timeout=TIMEOUT_S,
            socket_connect_timeout=TIMEOUT_S,
            decode_responses=True,
        )
        try:
            await self._client.ping()
        except (aioredis.RedisError, OSError) as exc:
            await self._client.aclose()
            raise SettingError(
                f"MEDIAPIPE_CLAIMS: redis at {self.config.redis_url} does not answer ({exc}); "
                "start redis-server, or point MEDIAPIPE_REDIS_URL (or scrapy-redis's REDIS_URL) "
                "at it"
            ) from None
        for name in ("CLAIM", "RENEW", "PUBLISH", "RELEASE"):
            self._scripts[name] = self._client.register_script(getattr(scripts, name))
        self._loops = [
            asyncio.ensure_future(self._every(POLL_S, self._poll)),
            asyncio.ensure_future(self._every(self.config.lease_s / 3, self._renew)),
            asyncio.ensure_future(self._every(TOTALS_S, self._add_totals)),
        ]
        logger.info(
            "Media sources are claimed in redis at %s under %s:* as worker %s (lease %g s)",
            self.config.redis_url,
            self.config.key_prefix,
            self.worker,
            self.config.lease_s,
        )

    async def close(self) -> None:
        for task in self._loops:
            task.cancel()
        for task in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is None:
            return
        self._to_release |= self._owned
        self._owned.clear()
        await self._flush()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._add_totals()
        await self._client.aclose()

    # -- what the pipeline asks ------------------------------------------------------------

    async def claim(self, key: str) -> SharedRecord | bool:
        """Claim the source ``key`` as its download is about to start. True: this worker holds
        the claim (or redis could not be asked): download it. False: another worker holds it
        (:meth:`wait` for it). A record: another worker resolved it already."""
        if key in self._owned:
            return True
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[SharedRecord | bool] = loop.create_future()
        if not self._asked:
            # The sources that reach their download in one turn of the loop go in one call.
            loop.call_soon(self._spawn, self._ask_first)
        self._asked.setdefault(key, []).append(answer)
        return await answer

    async def wait(self, key: str) -> SharedRecord | None:
        """Wait until the worker that holds the source ``key`` publishes its record, or its
        claim lapses: then this worker holds it (None) and downloads it."""
        answer: asyncio.Future[SharedRecord | bool] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(answer)
        result = await answer
        return result if isinstance(result, SharedRecord) else None

    def publish(self, key: str, record: MediaRecord) -> None:
        """The source ``key`` is resolved: its record goes to redis, its claim is given up."""
        self._owned.discard(key)
        self._to_publish[key] = SharedRecord.of(record, self.worker).dumps()
        self._flush_soon()

    def release(self, key: str) -> None:
        """The source ``key`` was not resolved (the crawl is stopping): another worker takes
        it without waiting for the lease to lapse."""
        if key in self._owned:
            self._owned.discard(key)
            self._to_release.add(key)
            self._flush_soon()

    # -- the calls to redis ----------------------------------------------------------------

    async def _ask_first(self) -> None:
        asked, self._asked = self._asked, {}
        await self._claim(asked, first=True)

    async def _poll(self) -> None:
        if self._waiting:
            waiting, self._waiting = self._waiting, {}
            await self._claim(waiting, first=False)

    async def _claim(
        self, asked: dict[str, list[asyncio.Future[SharedRecord | bool]]], *, first: bool
    ) -> None:
        keys = list(asked)
        try:
            answers = await self._run_pairs("CLAIM", keys, [self.worker, self._lease_ms])
        except _REDIS_ERRORS as exc:
            self._unavailable(exc, "downloading its sources without claims", len(keys))
            for key in keys:
                _settle(asked[key], True)
            return
        for key, answer in zip(keys, answers, strict=True):
            futures = [future for future in asked[key] if not future.done()]
            if answer == "+":
                if not futures:  # its callers are gone: someone else may have it
                    self._to_release.add(key)
                    self._flush_soon()
                    continue
                self._owned.add(key)
                self.stats.inc("claims/owned" if first else "claims/taken_over")
                _settle(futures, True)
            elif answer == "-":
                if first:
                    _settle(futures, False)
                elif futures:
                    self._waiting.setdefault(key, []).extend(futures)
            else:
                record = self._parse(key, answer[1:])
                _settle(futures, True if record is None else record)

    def _parse(self, key: str, text: str) -> SharedRecord | None:
        try:
            record = SharedRecord.loads(text)
        except ValueError as exc:
            # Not from a worker of this version: this worker resolves the source and writes a
            # good record over it.
            self._warn_once(
                "record",
                "The shared record of a media source in redis (%s:done:%s) is unreadable (%s): "
                "downloading the source here",
                self.config.key_prefix,
                key,
                exc,
            )
            return None
        self.stats.inc("claims/shared")
        return record

    async def _renew(self) -> None:
        owned = list(self._owned)
        if not owned:
            return
        claims = [self._claim_key(key) for key in owned]
        try:
            answers: list[int] = []
            for first in range(0, len(claims), BATCH):
                answers += await self._scripts["RENEW"](
                    keys=claims[first : first + BATCH], args=[self.worker, self._lease_ms]
                )
        except _REDIS_ERRORS as exc:
            self._unavailable(exc, "its claims may lapse", len(owned))
            return
        # A claim given up meanwhile (its record published) is gone from redis, not lost.
        lost = [
            key for key, kept in zip(owned, answers, strict=True) if not kept and key in self._owned
        ]
        for key in lost:
            self._owned.discard(key)
        if lost:
            self.stats.inc("claims/lost", len(lost))
            self._warn_once(
                "lost",
                "%d claims of this worker lapsed before their downloads ended (stat "
                "mediapipe/claims/lost): other workers may fetch those sources too; a lease "
                "longer than the reactor's longest stall (MEDIAPIPE_CLAIM_LEASE) avoids it",
                len(lost),
            )

    def _flush_soon(self) -> None:
        if len(self._to_publish) + len(self._to_release) == 1:
            asyncio.get_running_loop().call_soon(self._spawn, self._flush)

    async def _flush(self) -> None:
        publish, self._to_publish = self._to_publish, {}
        release, self._to_release = self._to_release, set()
        try:
            if publish:
                keys = list(publish)
                await self._run_pairs(
                    "PUBLISH",
                    keys,
                    [self.worker, self.config.keep_s],
                    per_key=[publish[key] for key in keys],
                )
            if release:
                claims = [self._claim_key(key) for key in release]
                for first in range(0, len(claims), BATCH):
                    await self._scripts["RELEASE"](
                        keys=claims[first : first + BATCH], args=[self.worker]
                    )
        except _REDIS_ERRORS as exc:
            # The files are stored: a waiting worker takes the source over when the claim
            # lapses, and finds the file in the store.
            self.stats.inc("claims/publish_failed", len(publish))
            self._unavailable(exc, "the records of its sources stay unshared", len(publish))

    async def _add_totals(self) -> None:
        if self._client is None:
            return
        try:
            await self._totals.add_to(self._client, f"{self.config.key_prefix}:stats")
        except _REDIS_ERRORS as exc:
            self._unavailable(exc, "its stats are not added to the totals", 0)

    async def _run_pairs(
        self, script: str, keys: list[str], args: list[Any], per_key: list[str] | None = None
    ) -> list[Any]:
        """Run a script over (claim, done) key pairs, in batches."""
        answers: list[Any] = []
        for first in range(0, len(keys), BATCH):
            batch = keys[first : first + BATCH]
            pairs = [name for key in batch for name in (self._claim_key(key), self._done_key(key))]
            extra = per_key[first : first + BATCH] if per_key is not None else []
            answer = await self._scripts[script](keys=pairs, args=[*args, *extra])
            if isinstance(answer, list):
                answers += answer
        return answers

    def _claim_key(self, key: str) -> str:
        return f"{self.config.key_prefix}:claim:{key}"

    def _done_key(self, key: str) -> str:
        return f"{self.config.key_prefix}:done:{key}"

    # -- plumbing --------------------------------------------------------------------------

    async def _every(self, seconds: float, job: Callable[[], Coroutine[Any, Any, None]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Claims: %s failed (a bug); it runs again", job.__name__)

    def _spawn(self, job: Callable[[], Coroutine[Any, Any, None]]) -> None:
        task = asyncio.ensure_future(job())
        self._tasks.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("Claims: a call failed (a bug)", exc_info=task.exception())

    def _unavailable(self, exc: BaseException, consequence: str, sources: int) -> None:
        if sources:
            self.stats.inc("claims/unavailable", sources)
        self._warn_once(
            "unavailable",
            "redis at %s cannot be reached (%s): %s (stat mediapipe/claims/unavailable); "
            "later failures are logged at DEBUG",
            self.config.redis_url,
            exc,
            consequence,
        )

    def _warn_once(self, topic: str, message: str, *args: Any) -> None:
        level = logging.DEBUG if topic in self._warned else logging.WARNING
        self._warned.add(topic)
        logger.log(level, message, *args)


def _settle(futures: list[asyncio.Future[SharedRecord | bool]], value: SharedRecord | bool) -> None:
    for future in futures:
        if not future.done():
            future.set_result(value)


def _redis_errors() -> tuple[type[BaseException], ...]:
    try:
        from redis.exceptions import RedisError
    except ImportError:  # claims are off without redis; nothing raises these
        return (OSError, asyncio.TimeoutError)
    return (RedisError, OSError, asyncio.TimeoutError)


_REDIS_ERRORS = _redis_errors()
