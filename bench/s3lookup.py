"""``python -m bench.s3lookup``: what one reuse lookup costs on the S3 store.

Starts the benchmark's SeaweedFS (127.0.0.1, stopped by its PID), opens mediapipe's store for
``s3://bench/s3lookup-<id>/`` the way the pipeline does (``open_store`` with Scrapy's AWS_*
settings), stores N sources (small bodies, committed like downloads), then times N lookups of
stored sources (hits) and N of sources never stored (misses), in a shuffled order, one at a
time as the pipeline's single lookup thread makes them. The same is done on a local folder
store for comparison. Every answer is checked: a hit must return the stored entry, a miss None.

Results: printed, and in ``bench/.work/s3lookup.md`` and ``s3lookup.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import signal
import statistics
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.s3 import SeaweedFS, delete_prefix

if TYPE_CHECKING:
    from mediapipe.store.protocol import MediaStore

WORK = Path(__file__).resolve().parent / ".work"
BODY_SIZE = 20_000
WARM_UP = 20  # lookups of each kind before the timed ones, not counted


@dataclass(slots=True)
class Timing:
    store: str  # "s3" or "local"
    kind: str  # "hit", "miss" or "commit"
    count: int
    median_ms: float
    p95_ms: float
    mean_ms: float
    max_ms: float
    requests_per_call: float | None  # HTTP requests to the S3 server per call (S3 only)
    wrong: int  # a hit that did not return its entry, a miss that returned one

    @classmethod
    def of(
        cls, store: str, kind: str, seconds: list[float], requests: int | None, wrong: int
    ) -> Timing:
        ms = sorted(value * 1000 for value in seconds)
        p95 = ms[min(len(ms) - 1, max(0, round(0.95 * len(ms)) - 1))]
        return cls(
            store,
            kind,
            len(ms),
            round(statistics.median(ms), 3),
            round(p95, 3),
            round(statistics.fmean(ms), 3),
            round(ms[-1], 3),
            round(requests / len(ms), 2) if requests is not None else None,
            wrong,
        )


@dataclass(slots=True)
class Requests:
    """Counts the HTTP requests a botocore client sends (its ``before-send`` event)."""

    count: int = 0

    def __call__(self, **_: Any) -> None:
        self.count += 1


def _facts() -> Any:
    from mediapipe.store.files import FileFacts

    return FileFacts(mime="image/jpeg", width=None, height=None, credentials=False)


def _settings(store: str, s3: SeaweedFS | None, temp_dir: Path) -> Any:
    from scrapy.settings import Settings

    values: dict[str, Any] = {"MEDIAPIPE_STORE": store}
    if s3 is not None:
        values |= s3.place("").scrapy_settings() | {"MEDIAPIPE_TEMP_DIR": str(temp_dir)}
    return Settings(values)


def _open(store: str, s3: SeaweedFS | None, temp_dir: Path) -> MediaStore:
    from mediapipe.settings import MediaConfig
    from mediapipe.store.registry import open_store

    settings = _settings(store, s3, temp_dir)
    return open_store(MediaConfig.from_settings(settings), settings)


def _measure(
    label: str, store: MediaStore, count: int, seed: int, counter: Requests | None
) -> list[Timing]:
    from mediapipe.naming import source_hash

    rng = random.Random(seed)
    stored = [f"http://bench.invalid/stored/img-{i:05d}.jpg" for i in range(count + WARM_UP)]
    missing = [f"http://bench.invalid/missing/img-{i:05d}.jpg" for i in range(count + WARM_UP)]
    names = {source_hash(url): f"img-{i:05d}.jpg" for i, url in enumerate(stored)}

    commits: list[float] = []
    before = 0
    facts = _facts()
    for number, (key, name) in enumerate(names.items()):
        if number == WARM_UP:
            before = counter.count if counter else 0
        temp = store.new_temp()
        temp.write(rng.randbytes(BODY_SIZE))
        started = time.perf_counter()
        store.commit(
            temp,
            name,
            key,
            facts,
        )
        commits.append(time.perf_counter() - started)
    commit_requests = counter.count - before if counter else None

    calls = [("hit", url) for url in stored] + [("miss", url) for url in missing]
    warm = calls[:WARM_UP] + calls[len(stored) : len(stored) + WARM_UP]
    timed = calls[WARM_UP : len(stored)] + calls[len(stored) + WARM_UP :]
    rng.shuffle(warm)
    rng.shuffle(timed)
    seconds: dict[str, list[float]] = {"hit": [], "miss": []}
    requests = {"hit": 0, "miss": 0}
    wrong = {"hit": 0, "miss": 0}
    for number, (kind, url) in enumerate(warm + timed):
        key = source_hash(url)
        before = counter.count if counter else 0
        started = time.perf_counter()
        found = store.lookup(key)
        elapsed = time.perf_counter() - started
        if number < len(warm):
            continue
        seconds[kind].append(elapsed)
        requests[kind] += (counter.count - before) if counter else 0
        right = found is None if kind == "miss" else found is not None and found.path == names[key]
        wrong[kind] += not right
    s3 = counter is not None
    return [
        Timing.of(label, "hit", seconds["hit"], requests["hit"] if s3 else None, wrong["hit"]),
        Timing.of(label, "miss", seconds["miss"], requests["miss"] if s3 else None, wrong["miss"]),
        Timing.of(label, "commit", commits[WARM_UP:], commit_requests, 0),
    ]


def _table(timings: list[Timing]) -> list[str]:
    lines = [
        "| store | call | n | median ms | p95 ms | mean ms | max ms | requests each | wrong |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in timings:
        each = "-" if t.requests_per_call is None else f"{t.requests_per_call:g}"
        lines.append(
            f"| {t.store} | {t.kind} | {t.count} | {t.median_ms:.2f} | {t.p95_ms:.2f} | "
            f"{t.mean_ms:.2f} | {t.max_ms:.2f} | {each} | {t.wrong} |"
        )
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.s3lookup", description=__doc__)
    parser.add_argument(
        "--lookups", type=int, default=500, help="timed lookups of each kind (default 500)"
    )
    parser.add_argument("--no-local", action="store_true", help="skip the local-folder store")
    parser.add_argument("--seed", type=int, default=1, help="shuffle and body seed (default 1)")
    parser.add_argument("--work", type=Path, default=WORK, help="work folder (bench/.work)")
    args = parser.parse_args(argv)
    if args.lookups < 1:
        parser.error("--lookups must be >= 1")
    work: Path = args.work.resolve()
    scratch = work / "s3lookup"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    began = time.perf_counter()
    timings: list[Timing] = []
    with SeaweedFS(work / "seaweedfs-lookup") as s3:
        pid = s3.process.pid if s3.process else None
        print(f"SeaweedFS {s3.version} (weed mini) on {s3.endpoint} (pid {pid})", flush=True)
        place = s3.place(f"s3lookup-{uuid.uuid4().hex[:8]}")
        store = _open(place.uri, s3, scratch / "tmp")
        counter = Requests()
        # The store's own client: every request it sends is counted.
        store._client.meta.events.register("before-send.s3", counter)  # type: ignore[attr-defined]
        try:
            timings += _measure("s3", store, args.lookups, args.seed, counter)
        finally:
            store.close()
            delete_prefix(place)
        if not args.no_local:
            local = _open(str(scratch / "local"), None, scratch / "tmp")
            try:
                timings += _measure("local", local, args.lookups, args.seed, None)
            finally:
                local.close()
    shutil.rmtree(scratch, ignore_errors=True)

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "?"

    header = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m bench.s3lookup" + (" " + " ".join(argv) if argv else ""),
        "machine": f"{os.cpu_count()} cores, {platform.platform()}",
        "python": platform.python_version(),
        "boto3": version("boto3"),
        "mediapipe": version("scrapy-mediapipe"),
        "seaweedfs": s3.version,
        "lookups": args.lookups,
        "seconds": round(time.perf_counter() - began, 1),
    }
    lines = [
        f"### S3 reuse lookup ({header['date']})",
        "",
        f"`{header['command']}` on {header['machine']}; Python {header['python']}, "
        f"boto3 {header['boto3']}, SeaweedFS {header['seaweedfs']} (weed mini) on loopback, "
        f"mediapipe {header['mediapipe']}. `S3Store.lookup(key)` one at a time, "
        f"hits and misses shuffled, after {WARM_UP} untimed of each; commit: one "
        f"{BODY_SIZE // 1000} kB file and its index entry. The local row is the folder store "
        "(SQLite index and a stat) on the same keys.",
        "",
        *_table(timings),
    ]
    text = "\n".join(lines)
    print("\n" + text)
    (work / "s3lookup.md").write_text(text + "\n", "utf-8")
    data = {"header": header, "timings": [asdict(t) for t in timings]}
    (work / "s3lookup.json").write_text(json.dumps(data, indent=1), "utf-8")
    print(f"\nresults: {work / 's3lookup.md'} and {work / 's3lookup.json'}")
    wrong = sum(t.wrong for t in timings)
    if wrong:
        print(f"\n!!! {wrong} lookups gave a wrong answer", file=sys.stderr)
        return 1
    return 0


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    sys.exit(main(sys.argv[1:]))
