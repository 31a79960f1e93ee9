"""Worker processes of the example project (``scrapy crawl worker``) for the multi-worker tests:
a real redis-server, the SeaweedFS bucket and the shared site, all on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis

from tests.s3server import BUCKET

if TYPE_CHECKING:
    from spiders.shared_site import SharedSite
    from tests.redisserver import RedisServer
    from tests.s3server import S3Server

ROOT = Path(__file__).resolve().parents[1]
KEY = "worker:mediapipe"
WORKER_SECONDS = 240


@dataclass
class Worker:
    number: int
    process: subprocess.Popen[bytes]
    feed: Path
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def items(self) -> list[dict[str, Any]]:
        if not self.feed.exists():
            return []
        lines = self.feed.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


def worker_settings(
    redis_server: RedisServer, s3: S3Server, prefix: str, **extra: Any
) -> dict[str, Any]:
    return {
        "REDIS_URL": redis_server.url,
        "MEDIAPIPE_STORE": f"s3://{BUCKET}/{prefix}/",
        "MEDIAPIPE_ALLOWED_HOSTS": "127.0.0.1",
        # scrapy-redis's default (0) never exits.
        "MAX_IDLE_TIME_BEFORE_CLOSE": 6,
        "CONCURRENT_REQUESTS": 8,
        "LOG_LEVEL": "INFO",
        "TELNETCONSOLE_ENABLED": False,
        **s3.settings(),
        **extra,
    }


def start_workers(count: int, folder: Path, settings: dict[str, Any]) -> list[Worker]:
    folder.mkdir(parents=True, exist_ok=True)
    arguments = [part for name, value in settings.items() for part in ("-s", f"{name}={value}")]
    workers = []
    for number in range(count):
        feed, log = folder / f"worker-{number}.jsonl", folder / f"worker-{number}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "scrapy", "crawl", "worker", *arguments, "-O", str(feed)],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        workers.append(Worker(number, process, feed, log))
    return workers


def push_start(redis_server: RedisServer, site: SharedSite) -> None:
    db = redis.Redis.from_url(redis_server.url)
    db.lpush("worker:start_urls", json.dumps({"url": f"{site.url}/p/0.html"}))


def wait_for(workers: list[Worker]) -> None:
    deadline = time.monotonic() + WORKER_SECONDS
    for worker in workers:
        try:
            worker.process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for other in workers:
                other.process.kill()
            tail = worker.log_text()[-3000:]
            raise AssertionError(f"worker {worker.number} still runs: {tail}") from None
        assert worker.process.returncode == 0, worker.log_text()[-3000:]


def stats_of(worker: Worker) -> dict[str, int]:
    """The worker's mediapipe/ stats, from the stats dump in its log."""
    text = worker.log_text()
    dump = text[text.rindex("Dumping Scrapy stats:") :]
    stats: dict[str, int] = {}
    for line in dump.splitlines()[1:]:
        line = line.strip(" {},")
        if line.startswith("'mediapipe/"):
            name, _, value = line.partition(": ")
            stats[name.strip("'")] = int(value)
    return stats


def bucket_files(s3: S3Server, prefix: str) -> dict[str, bytes]:
    """The media objects under ``prefix`` (the store's own .mediapipe/ folder left out)."""
    client = s3.client()
    found: dict[str, bytes] = {}
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/")
    for page in pages:
        for entry in page.get("Contents", []):
            name = entry["Key"].removeprefix(prefix + "/")
            if not name.startswith(".mediapipe/"):
                found[name] = client.get_object(Bucket=BUCKET, Key=entry["Key"])["Body"].read()
    return found
