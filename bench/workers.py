"""``python -m bench.workers``: several Scrapy worker processes on one scrapy-redis frontier and
one S3 bucket (SeaweedFS), mediapipe (``MEDIAPIPE_CLAIMS``) against Scrapy's FilesPipeline,
with 1, 2 and 4 workers, against a site whose media answers each take 100 ms.

Each run: a fresh redis-server, a fresh bucket prefix and a fresh site (its request counters at
zero). Every page URL is pushed as a start URL; the clock starts then and the workers are
started at once. The crawl time ends when the site has sent its last media answer; the wall
time when the last worker exits. Then the bucket is checked object by object against the site's
bytes. See bench/README.md, "Several workers".
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import resource
import shlex
import signal
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bench.s3 import S3Place, SeaweedFS, delete_prefix, list_keys
from bench.server import die_with_parent
from spiders.shared_site import SharedSite, page_media
from tests.redisserver import RedisServer

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / ".work"
RUNS = WORK / "workers"
RESULTS_MD = WORK / "workers-results.md"
RESULTS_JSON = WORK / "workers-results.json"

RUNNERS = ("mediapipe", "filespipeline")
SPIDERS = {"mediapipe": "worker", "filespipeline": "files_worker"}
RUN_SECONDS = 400  # one run, push to the last worker's exit; then its workers are killed
TARGETS = {2: 1.8, 4: 3.4}  # mediapipe's files/s against its own 1-worker run
CLK_TCK = os.sysconf("SC_CLK_TCK")
QUIET_BUSY = 0.15  # share of the machine's CPU busy in the second before a run
QUIET_WAIT_S = 180


class TimedSite(SharedSite):
    """The shared site, also noting when the first and the last media request arrived, when
    the last media answer had been sent, and how many media answers it was making at once
    (the most, and the time they took in all)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.first_media: float | None = None
        self.last_media: float | None = None
        self.last_answer: float | None = None
        self.media_at_once = 0
        self.peak_media_at_once = 0
        self.media_answer_s = 0.0

    def count(self, path: str) -> None:
        super().count(path)
        if path.startswith("/m/"):
            now = time.monotonic()
            with self._lock:
                if self.first_media is None:
                    self.first_media = now
                self.last_media = now

    @contextlib.contextmanager
    def answering(self, path: str) -> Iterator[None]:
        started = time.monotonic()
        with self._lock:
            self.media_at_once += 1
            self.peak_media_at_once = max(self.peak_media_at_once, self.media_at_once)
        try:
            yield
        finally:
            now = time.monotonic()
            with self._lock:
                self.last_answer = now
                self.media_at_once -= 1
                self.media_answer_s += now - started


@dataclass(slots=True)
class WorkerResult:
    pid: int
    exit_code: int | None = None
    exit_s: float | None = None  # after the push
    peak_rss_mib: float = 0.0  # ru_maxrss from wait4
    cpu_s: float = 0.0  # user + system, whole process (imports included)
    items: int = 0
    scrapy_stats: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Run:
    runner: str
    workers: int
    round: int
    prefix: str = ""
    wall_s: float = 0.0  # push to the last worker's exit
    crawl_s: float = 0.0  # push to the end of the last media answer the site sent
    first_media_s: float = 0.0  # push to the first media request at the site
    last_media_s: float = 0.0  # push to the last media request at the site
    files: int = 0  # distinct media sources stored (each object checked)
    objects: int = 0  # objects under the prefix, .mediapipe/ left out
    media_requests: int = 0
    duplicates: int = 0  # sum of count - 1 over media paths
    peak_media_at_once: int = 0  # media answers the site was making at once, at most
    mean_media_at_once: float = 0.0  # their time in all / (first media request to last answer)
    page_requests: int = 0
    pages_in_items: int = 0
    verified: bool = False
    problems: list[str] = field(default_factory=list)
    cpu_workers_s: float = 0.0
    cpu_weed_s: float = 0.0
    cpu_redis_s: float = 0.0
    cpu_bench_s: float = 0.0  # this process: the site's threads (and the polling loop)
    cpu_machine_s: float = 0.0  # every process of the machine, during the run
    busy_before: float = 0.0  # the machine's busy share in the second before the run
    results: list[WorkerResult] = field(default_factory=list)
    redis_stats: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def files_per_s(self) -> float:
        """Over the crawl time: the rate at which the workers got the files."""
        return self.files / self.crawl_s if self.crawl_s else 0.0

    @property
    def files_per_s_wall(self) -> float:
        return self.files / self.wall_s if self.wall_s else 0.0

    @property
    def duplicate_pct(self) -> float:
        return 100.0 * self.duplicates / self.files if self.files else 0.0

    @property
    def cpu_ours_s(self) -> float:
        return self.cpu_workers_s + self.cpu_weed_s + self.cpu_redis_s + self.cpu_bench_s

    @property
    def cpu_busy_pct(self) -> float:
        """The machine's CPU busy during the run, all processes, of wall s x cores."""
        if not self.wall_s:
            return 0.0
        return 100.0 * self.cpu_machine_s / (self.wall_s * (os.cpu_count() or 1))

    @property
    def cpu_foreign_s(self) -> float:
        """CPU of processes that are not this run's (another job on the machine); the
        workers' CPU counts from their start, so this is approximate (±0.5 s)."""
        return max(0.0, self.cpu_machine_s - self.cpu_ours_s)


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a running process, from /proc (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def system_cpu_s() -> tuple[float, float]:
    """Busy and total CPU seconds of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / CLK_TCK, sum(values[:8]) / CLK_TCK


def wait_until_quiet(limit_s: float = QUIET_WAIT_S) -> float:
    """Before a run: wait (at most ``limit_s``) until the machine was under QUIET_BUSY busy
    for a whole second, so that another job's load (a test suite) does not land in a run.
    Returns the busy share of the last second sampled."""
    deadline = time.monotonic() + limit_s
    while True:
        busy0, total0 = system_cpu_s()
        time.sleep(1.0)
        busy1, total1 = system_cpu_s()
        share = (busy1 - busy0) / max(total1 - total0, 1e-9)
        if share < QUIET_BUSY or time.monotonic() > deadline:
            return share


def self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker_command(
    runner: str,
    feed: Path,
    redis_url: str,
    place: S3Place,
    options: argparse.Namespace,
) -> list[str]:
    settings: dict[str, Any] = {
        "REDIS_URL": redis_url,
        "MAX_IDLE_TIME_BEFORE_CLOSE": options.idle,
        "CONCURRENT_REQUESTS": options.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": options.concurrency,
        "LOG_LEVEL": "INFO",
        "TELNETCONSOLE_ENABLED": False,
        **place.scrapy_settings(),
    }
    if runner == "mediapipe":
        settings |= {
            "MEDIAPIPE_STORE": place.uri,
            "MEDIAPIPE_ALLOWED_HOSTS": "127.0.0.1",
            # FilesPipeline makes no thumbnails: neither does mediapipe here.
            "MEDIAPIPE_THUMBS": "{}",
        }
    else:
        # The spider's custom_settings set ADDONS = {} and the FilesPipeline; checked in the log.
        settings |= {"SPIDER_MODULES": "bench.workers_spider", "FILES_STORE": place.uri}
    settings |= dict(options.extra)
    arguments = [part for name, value in settings.items() for part in ("-s", f"{name}={value}")]
    return [sys.executable, "-m", "scrapy", "crawl", SPIDERS[runner], *arguments, "-O", str(feed)]


def scrapy_stats(log: str) -> dict[str, int]:
    """The integer stats of the last Scrapy stats dump in a worker's log."""
    start = log.rfind("Dumping Scrapy stats:")
    stats: dict[str, int] = {}
    if start < 0:
        return stats
    for line in log[start:].splitlines()[1:]:
        match = re.match(r"\s*[{ ]?'([^']+)': (-?\d+),?}?$", line)
        if match:
            stats[match[1]] = int(match[2])
        elif line and not line.startswith((" ", "{")):
            break
    return stats


def read_feed(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def stop_by_pid(process: subprocess.Popen[bytes]) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError, subprocess.TimeoutExpired):
            process.wait(timeout=15)


def wait_all(
    processes: list[subprocess.Popen[bytes]], results: list[WorkerResult], t0: float
) -> None:
    """Reap every worker with wait4 (its ru_maxrss and CPU), within RUN_SECONDS of the push."""
    deadline = t0 + RUN_SECONDS
    left = set(range(len(processes)))
    while left:
        for index in sorted(left):
            process = processes[index]
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid == 0:
                continue
            process.returncode = os.waitstatus_to_exitcode(status)
            result = results[index]
            result.exit_code = process.returncode
            result.exit_s = time.monotonic() - t0
            result.peak_rss_mib = usage.ru_maxrss / 1024
            result.cpu_s = usage.ru_utime + usage.ru_stime
            left.discard(index)
        if left and time.monotonic() > deadline:
            for index in left:
                stop_by_pid(processes[index])
            raise TimeoutError(f"{len(left)} worker(s) still ran {RUN_SECONDS} s after the push")
        time.sleep(0.02)


def run_once(
    runner: str, workers: int, round_: int, s3: SeaweedFS, options: argparse.Namespace
) -> Run:
    run = Run(runner, workers, round_)
    folder = RUNS / f"{runner}-{workers}w-r{round_}"
    if folder.exists():
        for old in folder.glob("*"):
            if old.is_file():
                old.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    run.prefix = f"workers/{runner}-{workers}w-r{round_}-{uuid.uuid4().hex[:8]}/"
    place = s3.place(run.prefix)
    site = TimedSite(options.pages, options.media, options.per_page, latency=options.latency)
    redis_server = RedisServer(folder / "redis")
    processes: list[subprocess.Popen[bytes]] = []
    feeds = [folder / f"worker-{n}.jsonl" for n in range(workers)]
    logs = [folder / f"worker-{n}.log" for n in range(workers)]
    run.busy_before = wait_until_quiet()
    site.start()
    try:
        redis_server.start()
        assert redis_server.process is not None
        import redis

        db = redis.Redis.from_url(redis_server.url, decode_responses=True)
        key = f"{SPIDERS[runner]}:start_urls"
        urls = [json.dumps({"url": f"{site.url}/p/{n}.html"}) for n in range(options.pages)]
        cpu_weed0 = proc_cpu_s(s3.process.pid) if s3.process else 0.0
        cpu_redis0 = proc_cpu_s(redis_server.process.pid)
        cpu_bench0 = self_cpu_s()
        machine0 = system_cpu_s()[0]
        # lpush of the reversed list: the list's head, which workers pop first, is page 0.
        db.lpush(key, *reversed(urls))
        t0 = time.monotonic()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        for feed, log in zip(feeds, logs, strict=True):
            command = worker_command(runner, feed, redis_server.url, place, options)
            with log.open("wb") as output:
                processes.append(
                    subprocess.Popen(
                        command,
                        cwd=ROOT,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=output,
                        stderr=subprocess.STDOUT,
                        preexec_fn=die_with_parent,
                    )
                )
        run.results = [WorkerResult(process.pid) for process in processes]
        try:
            wait_all(processes, run.results, t0)
        finally:
            run.wall_s = time.monotonic() - t0
            run.cpu_weed_s = (proc_cpu_s(s3.process.pid) if s3.process else 0.0) - cpu_weed0
            run.cpu_redis_s = proc_cpu_s(redis_server.process.pid) - cpu_redis0
            run.cpu_bench_s = self_cpu_s() - cpu_bench0
            run.cpu_machine_s = system_cpu_s()[0] - machine0
        run.first_media_s = (site.first_media or t0) - t0
        run.last_media_s = (site.last_media or t0) - t0
        run.crawl_s = (site.last_answer or t0) - t0
        run.peak_media_at_once = site.peak_media_at_once
        media_span = (site.last_answer or t0) - (site.first_media or t0)
        run.mean_media_at_once = site.media_answer_s / media_span if media_span > 0 else 0.0
        if runner == "mediapipe":
            totals = db.hgetall("worker:mediapipe:stats")
            run.redis_stats = {str(name): str(value) for name, value in totals.items()}
        db.close()
    except Exception as exc:
        run.error = f"{type(exc).__name__}: {exc}"
    finally:
        for process in processes:
            stop_by_pid(process)
        redis_server.stop()
        counts = site.media_counts()
        pages = sum(n for path, n in site.counts.items() if path.startswith("/p/"))
        site.stop()
    run.media_requests = sum(counts.values())
    run.duplicates = sum(n - 1 for n in counts.values())
    run.page_requests = pages
    run.cpu_workers_s = sum(result.cpu_s for result in run.results)
    items: list[dict[str, Any]] = []
    for result, feed, log in zip(run.results, feeds, logs, strict=True):
        text = log.read_text(encoding="utf-8", errors="replace")
        result.scrapy_stats = scrapy_stats(text)
        worker_items = read_feed(feed)
        result.items = len(worker_items)
        items.extend(worker_items)
        run.problems.extend(log_problems(runner, text, result))
    if run.error is None:
        verify_run(run, items, site, place, options)
    with contextlib.suppress(Exception):
        delete_prefix(place)
    return run


def log_problems(runner: str, log: str, result: WorkerResult) -> list[str]:
    problems = []
    if result.exit_code != 0:
        problems.append(f"worker {result.pid} exited {result.exit_code}")
    if " ERROR: " in log or "Traceback" in log:
        problems.append(f"worker {result.pid} logged an error")
    addons = re.search(r"Enabled addons:\n(\[.*?\])", log, re.S)
    if addons is None:
        problems.append(f"worker {result.pid}: no 'Enabled addons' line")
    elif ("mediapipe" in addons[1]) != (runner == "mediapipe"):
        problems.append(f"worker {result.pid}: enabled addons {addons[1]}")
    if runner == "filespipeline" and re.search(r"\] mediapipe", log):
        problems.append(f"worker {result.pid}: mediapipe logged in a FilesPipeline run")
    return problems


def verify_run(
    run: Run, items: list[dict[str, Any]], site: SharedSite, place: S3Place, options: Any
) -> None:
    """Every page in the items, every referenced source stored once, every object's bytes."""
    expected = {
        site.media_path(number)
        for page in range(options.pages)
        for number in page_media(page, options.per_page, options.media)
    }
    run.pages_in_items = len({urlsplit(item["page"]).path for item in items})
    if run.pages_in_items != options.pages:
        run.problems.append(f"{options.pages - run.pages_in_items} pages missing from the items")
    source_path: dict[str, str] = {}
    for item in items:
        if run.runner == "mediapipe":
            if "file_urls" in item or "files" in item:
                run.problems.append("a FilesPipeline field in a mediapipe item")
            records = [(r["source"], r.get("path"), r["status"]) for r in item.get("media", [])]
            good: tuple[str, ...] = ("downloaded", "uptodate")
        else:
            if "media" in item:
                run.problems.append("a mediapipe record in a FilesPipeline item")
            records = [(r["url"], r.get("path"), r["status"]) for r in item.get("files", [])]
            good = ("downloaded", "uptodate", "cached")
        for source, path, status in records:
            if status not in good or not path:
                run.problems.append(f"{source}: status {status}")
                continue
            if source_path.setdefault(source, path) != path:
                run.problems.append(f"{source}: two paths, {source_path[source]} and {path}")
    sources = {urlsplit(source).path for source in source_path}
    if sources != expected:
        run.problems.append(
            f"{len(expected - sources)} sources missing, {len(sources - expected)} unexpected"
        )
    client = place.client()
    keys = [
        key
        for key in list_keys(client, place.bucket, place.prefix)
        if not key.removeprefix(place.prefix).startswith(".mediapipe/")
    ]
    run.objects = len(keys)
    by_path: dict[str, list[str]] = {}
    for source, path in source_path.items():
        by_path.setdefault(path, []).append(urlsplit(source).path)
    missing = set(by_path) - {key.removeprefix(place.prefix) for key in keys}
    if missing:
        run.problems.append(f"{len(missing)} recorded paths not in the bucket")

    def check(key: str) -> tuple[list[str], str | None]:
        """The sources whose bytes this object holds, or the problem with it."""
        path = key.removeprefix(place.prefix)
        body = client.get_object(Bucket=place.bucket, Key=key)["Body"].read()
        if path not in by_path:
            return [], f"{path}: in the bucket, in no record"
        wrong = [source for source in by_path[path] if site.media_of(source) != body]
        return by_path[path], (f"{path}: bytes differ from {wrong[0]}" if wrong else None)

    with ThreadPoolExecutor(8) as pool:
        checked = list(pool.map(check, keys))
    bad = [problem for _, problem in checked if problem]
    run.problems.extend(bad[:20])
    if len(bad) > 20:
        run.problems.append(f"... {len(bad) - 20} more bad objects")
    # files: distinct sources whose object is in the bucket with exactly their bytes.
    run.files = len({source for found, problem in checked if not problem for source in found})
    run.verified = not run.problems


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def summary_rows(runs: list[Run]) -> list[str]:
    """Medians per runner and worker count; scaling against the runner's own 1-worker run."""
    rows = [
        "| runner | workers | files | crawl s | files/s | scaling | wall s "
        "| files/s to exit | scaling to exit | duplicate downloads (%) "
        "| media requests at once: mean (most) | peak RSS per worker MiB "
        "| worker CPU s (ms/file) | machine CPU busy | verified | target |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|:-:|---|",
    ]
    for runner in RUNNERS:
        base: tuple[float, float] | None = None
        for workers in sorted({run.workers for run in runs}):
            group = [r for r in runs if r.runner == runner and r.workers == workers]
            done = [r for r in group if r.error is None]
            if not group:
                continue
            if not done:
                rows.append(f"| {runner} | {workers} | failed: {group[0].error} |" + " |" * 13)
                continue
            fps = median([r.files_per_s for r in done])
            fps_wall = median([r.files_per_s_wall for r in done])
            if workers == 1:
                base = (fps, fps_wall)
            scale = fps / base[0] if base and base[0] else None
            scale_wall = fps_wall / base[1] if base and base[1] else None
            duplicates = median([float(r.duplicates) for r in done])
            rss = [w.peak_rss_mib for r in done for w in r.results]
            cpu = median([r.cpu_workers_s for r in done])
            per_file = median([1000 * r.cpu_workers_s / r.files for r in done if r.files])
            target = ""
            if runner == "mediapipe":
                parts = []
                if workers in TARGETS:
                    wanted = TARGETS[workers]
                    met = scale is not None and scale >= wanted
                    parts.append(f"≥ {wanted}×: {'met' if met else '**missed**'}")
                parts.append(f"0 duplicates: {'met' if duplicates == 0 else '**missed**'}")
                target = "; ".join(parts)
            rows.append(
                f"| {runner} | {workers} | {median([float(r.files) for r in done]):.0f} "
                f"| {median([r.crawl_s for r in done]):.1f} | {fps:.1f} | {_ratio(scale)} "
                f"| {median([r.wall_s for r in done]):.1f} | {fps_wall:.1f} "
                f"| {_ratio(scale_wall)} "
                f"| {duplicates:.0f} ({median([r.duplicate_pct for r in done]):.1f} %) "
                f"| {median([r.mean_media_at_once for r in done]):.1f} "
                f"({max(r.peak_media_at_once for r in done)}) "
                f"| {median(rss):.0f} (max {max(rss):.0f}) | {cpu:.1f} ({per_file:.1f}) "
                f"| {median([r.cpu_busy_pct for r in done]):.0f} % "
                f"| {sum(r.verified for r in group)}/{len(group)} | {target} |"
            )
    return rows


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def run_rows(runs: list[Run]) -> list[str]:
    rows = [
        "| round | runner | workers | crawl s | wall s | first / last media request s | files "
        "| files/s | duplicates | page requests | peak RSS per worker MiB "
        "| CPU s: workers / weed / redis / site / other processes | verified |",
        "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|---|---|---|",
    ]
    for run in runs:
        rss = ", ".join(f"{w.peak_rss_mib:.0f}" for w in run.results)
        verified = "yes" if run.verified else f"**no**: {'; '.join(run.problems[:3]) or run.error}"
        rows.append(
            f"| {run.round} | {run.runner} | {run.workers} | {run.crawl_s:.1f} | {run.wall_s:.1f} "
            f"| {run.first_media_s:.1f} / {run.last_media_s:.1f} | {run.files} "
            f"| {run.files_per_s:.1f} | {run.duplicates} | {run.page_requests} | {rss} "
            f"| {run.cpu_workers_s:.1f} / {run.cpu_weed_s:.1f} / {run.cpu_redis_s:.1f} "
            f"/ {run.cpu_bench_s:.1f} / {run.cpu_foreign_s:.1f} | {verified} |"
        )
    return rows


def markdown(runs: list[Run], options: argparse.Namespace, command: str, weed: str) -> str:
    import scrapy
    import scrapy_redis

    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    cores = os.cpu_count()
    lines = [
        f"### Several workers ({now})",
        "",
        f"`{command}`",
        "",
        f"Machine: {cores} cores, Linux {platform.release()}, Python "
        f"{platform.python_version()}, Scrapy {scrapy.__version__}, scrapy-redis "
        f"{scrapy_redis.__version__}, SeaweedFS {weed} (`weed mini`), redis-server "
        f"{redis_version()}, all on 127.0.0.1. Site: {options.pages} pages, {options.media} "
        f"images ({options.per_page} per page), {options.latency * 1000:.0f} ms per media "
        f"answer; every page pushed as a start URL; CONCURRENT_REQUESTS={options.concurrency} "
        "per worker, "
        f"MAX_IDLE_TIME_BEFORE_CLOSE={options.idle}"
        + "".join(f", {name}={value}" for name, value in options.extra)
        + f". {options.rounds} interleaved round(s), medians.",
        "",
        *summary_rows(runs),
        "",
        "- crawl s: from the push of the start URLs to the end of the last media answer the "
        "site sent; the workers start right after the push, so their start-up counts. files = "
        "distinct media sources stored, each object's bytes checked against the site; files/s "
        "= files / crawl s; scaling = files/s against the same runner's 1-worker run (the "
        "target's measure). wall s: to the last worker's exit, which adds scrapy-redis's idle "
        "wait before closing (MAX_IDLE_TIME_BEFORE_CLOSE, seen at Scrapy's 5 s heartbeat: 5 to "
        "15 s in every run, whatever the number of workers); files/s and scaling to exit use "
        "it.",
        "- duplicate downloads: sum of (requests − 1) over the media paths, counted by the "
        "site; % of files. Media requests at once: the site's media answers in progress, "
        "mean over the media phase (their time in all / first media request to last answer) "
        "and most. Worker CPU: user + system of all workers (wait4), whole processes. "
        f"Machine CPU busy: every process's CPU (/proc/stat) / (wall s × {cores} cores).",
        "",
        "<details><summary>Every run</summary>",
        "",
        *run_rows(runs),
        "",
        "</details>",
        "",
    ]
    return "\n".join(lines)


def redis_version() -> str:
    done = subprocess.run(
        ["/usr/bin/redis-server", "--version"], capture_output=True, text=True, check=False
    )
    match = re.search(r"v=(\S+)", done.stdout)
    return match[1] if match else "?"


def schedule(rounds: int, counts: list[int]) -> list[tuple[int, str, int]]:
    """Interleaved: each round every (runner, workers) once, the order rotated by round."""
    kinds = [(runner, n) for n in counts for runner in RUNNERS]
    out: list[tuple[int, str, int]] = []
    for round_ in range(1, rounds + 1):
        shift = (round_ - 1) % len(kinds)
        out.extend((round_, r, n) for r, n in kinds[shift:] + kinds[:shift])
    return out


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.workers", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    parser.add_argument("--runners", default=",".join(RUNNERS))
    parser.add_argument("--pages", type=int, default=600)
    parser.add_argument("--media", type=int, default=1800)
    parser.add_argument("--per-page", type=int, default=6)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per media answer")
    parser.add_argument("--idle", type=int, default=5, help="MAX_IDLE_TIME_BEFORE_CLOSE")
    # One request at a time per worker: four workers then fit on two cores with the bucket
    # (about half of the machine), so the scaling measured is the claims', not the CPU's.
    parser.add_argument(
        "--concurrency", type=int, default=1, help="CONCURRENT_REQUESTS of each worker"
    )
    parser.add_argument(
        "--set",
        dest="extra",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        type=_setting,
        help="one more Scrapy setting for every worker of both runners (repeatable)",
    )
    options = parser.parse_args(argv)
    options.counts = [int(n) for n in options.workers.split(",")]
    options.runner_list = [r for r in options.runners.split(",") if r]
    if unknown := set(options.runner_list) - set(RUNNERS):
        parser.error(f"unknown runners: {', '.join(sorted(unknown))}")
    return options


def _setting(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"{text!r}: a setting is NAME=VALUE")
    return name, value


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    options = parse_args(arguments)
    command = shlex.join(["python", "-m", "bench.workers", *arguments])
    RUNS.mkdir(parents=True, exist_ok=True)
    runs: list[Run] = []
    started = time.monotonic()
    with SeaweedFS(WORK / "seaweedfs-workers") as s3:
        for round_, runner, workers in schedule(options.rounds, options.counts):
            if runner not in options.runner_list:
                continue
            run = run_once(runner, workers, round_, s3, options)
            runs.append(run)
            print(
                f"round {round_} {runner} {workers}w: {run.files} files, crawl "
                f"{run.crawl_s:.1f} s, {run.files_per_s:.1f} files/s, wall {run.wall_s:.1f} s, "
                f"{run.duplicates} duplicates, worker CPU {run.cpu_workers_s:.1f} s, "
                f"{'verified' if run.verified else 'NOT verified: ' + '; '.join(run.problems[:3])}"
                f"{' ' + run.error if run.error else ''}",
                flush=True,
            )
        weed = s3.version
    text = markdown(runs, options, command, weed)
    text += f"Benchmark time: {(time.monotonic() - started) / 60:.1f} min.\n"
    RESULTS_MD.write_text(text, encoding="utf-8")
    RESULTS_JSON.write_text(
        json.dumps([asdict(run) for run in runs], indent=1, default=str), encoding="utf-8"
    )
    print(text)
    return 0 if runs and all(run.verified for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
