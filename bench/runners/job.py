"""What the parent asks of a runner process, and what the process reports back.

Both sides of the protocol live here: the parent writes a :class:`Job` as JSON, the child reads
it, does the work, writes one JSON line per source to ``records`` as files complete, and writes
a :class:`Outcome` to ``result`` at exit.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import os
import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any


@dataclass(frozen=True, slots=True)
class Job:
    runner: str
    urls_file: str  # one URL per line
    out_dir: str  # the fresh store / download folder
    records: str  # JSONL written by the child: {"url", "path", "status", "reason", "sha256"}
    result: str  # JSON written by the child at exit
    concurrency: int
    urls_per_item: int
    checkpoint_every: int  # record memory every N finished downloads (and at the end)
    # S3 corpora: Scrapy's AWS_* settings for the benchmark's SeaweedFS; out_dir is then the
    # store's s3://bucket/prefix/ and temp_dir the local folder mediapipe spools bodies in.
    s3_settings: dict[str, Any] | None = None
    temp_dir: str | None = None
    # Runners that keep nothing (scrapy-downloader): a JSON object of corpus path (the URL's
    # path) to SHA-256, against which the runner checks each body before dropping it.
    expected_file: str | None = None

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1), "utf-8")

    @classmethod
    def load(cls, path: Path) -> Job:
        return cls(**json.loads(path.read_text("utf-8")))

    def urls(self) -> list[str]:
        text = Path(self.urls_file).read_text("utf-8")
        return [line for line in text.splitlines() if line]


@dataclass(slots=True)
class Checkpoint:
    files: int  # downloads finished (responses received)
    stored: int  # sources whose item is done (their records written)
    seconds: float
    vm_hwm_kib: int
    vm_rss_kib: int


@dataclass(slots=True)
class Outcome:
    wall_s: float = 0.0  # from the start to the last finished file
    total_s: float = 0.0  # from the start until the runner returned (shutdown included)
    cpu_user_s: float = 0.0
    cpu_sys_s: float = 0.0
    vm_hwm_kib: int = 0
    # Of the processes the runner's process started (mediapipe's writer process): their whole
    # CPU time, once reaped, and the largest peak RSS seen at a checkpoint while they ran.
    helper_cpu_s: float = 0.0
    helper_peak_rss_kib: int = 0
    finished_files: int = 0  # records written
    downloads: int = 0  # responses received
    checkpoints: list[Checkpoint] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # the mediapipe source the process used (mediapipe runner only)
    error: str | None = None

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1, default=str), "utf-8")

    @classmethod
    def load(cls, path: Path) -> Outcome:
        data = json.loads(path.read_text("utf-8"))
        data["checkpoints"] = [Checkpoint(**point) for point in data.get("checkpoints", [])]
        return cls(**data)


def source_fingerprint(package: str = "mediapipe") -> str:
    """SHA-256 (12 digits) of a package's ``*.py`` files: which code a run used. The package is
    installed editable and may be edited while the benchmark runs."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return "?"
    digest = hashlib.sha256()
    root = Path(spec.origin).parent
    # Subpackages too (mediapipe.store holds every store).
    for path in sorted(root.rglob("*.py")):
        name = path.relative_to(root).as_posix()
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def proc_status_kib(name: str, pid: int | str = "self") -> int:
    """A ``Vm*`` line of ``/proc/<pid>/status`` in KiB (0 when unreadable)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return 0
    return 0


def child_pids() -> list[int]:
    """The processes this process started that still run (mediapipe's writer process)."""
    pids: list[int] = []
    try:
        for thread in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{thread}/children", encoding="ascii") as children:
                pids.extend(int(pid) for pid in children.read().split())
    except OSError:
        pass
    return pids


class Meter:
    """Times the measured section, counts finished files and writes their records."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.outcome = Outcome()
        self._records: IO[str] = open(job.records, "w", encoding="utf-8")  # noqa: SIM115
        self._next_checkpoint = job.checkpoint_every
        self._t0 = 0.0
        self._usage0: resource.struct_rusage | None = None
        self._t_last = 0.0
        self._usage_last: resource.struct_rusage | None = None
        self._helper_hwm_kib = 0

    def start(self) -> None:
        self._usage0 = resource.getrusage(resource.RUSAGE_SELF)
        self._t0 = time.perf_counter()

    def record(
        self,
        url: str,
        path: str | None,
        status: str,
        reason: str | None = None,
        sha256: str | None = None,
    ) -> None:
        line = {"url": url, "path": path, "status": status, "reason": reason, "sha256": sha256}
        self._records.write(json.dumps(line, ensure_ascii=False) + "\n")
        self.outcome.finished_files += 1
        self._t_last = time.perf_counter()
        self._usage_last = resource.getrusage(resource.RUSAGE_SELF)

    def downloaded(self) -> None:
        """One response is in (a Scrapy item's records come only when all its sources are)."""
        self.outcome.downloads += 1
        if self.job.checkpoint_every and self.outcome.downloads >= self._next_checkpoint:
            self._next_checkpoint += self.job.checkpoint_every
            self.checkpoint()

    def checkpoint(self) -> None:
        # ru_maxrss of a reaped child counts the pages it shared with this process before its
        # exec; its own VmHWM, read while it runs, does not.
        for pid in child_pids():
            self._helper_hwm_kib = max(self._helper_hwm_kib, proc_status_kib("VmHWM", pid))
        self.outcome.checkpoints.append(
            Checkpoint(
                files=self.outcome.downloads,
                stored=self.outcome.finished_files,
                seconds=round(time.perf_counter() - self._t0, 3),
                vm_hwm_kib=proc_status_kib("VmHWM"),
                vm_rss_kib=proc_status_kib("VmRSS"),
            )
        )

    def stop(self) -> None:
        """The runner returned. Wall and CPU time are taken at the last finished file: Scrapy
        notices that a crawl is idle on a 5 s heartbeat, which says nothing about downloads."""
        self.outcome.total_s = time.perf_counter() - self._t0
        if self._usage_last is None:  # nothing finished
            self._t_last = time.perf_counter()
            self._usage_last = resource.getrusage(resource.RUSAGE_SELF)
        self.outcome.wall_s = self._t_last - self._t0
        if self._usage0 is not None:
            self.outcome.cpu_user_s = self._usage_last.ru_utime - self._usage0.ru_utime
            self.outcome.cpu_sys_s = self._usage_last.ru_stime - self._usage0.ru_stime
        helpers = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.outcome.helper_cpu_s = helpers.ru_utime + helpers.ru_stime
        self.checkpoint()
        self.outcome.helper_peak_rss_kib = self._helper_hwm_kib
        self._records.close()

    def finish(self) -> None:
        """Write the result file; the last thing the process does."""
        self.outcome.vm_hwm_kib = proc_status_kib("VmHWM")
        self.outcome.save(Path(self.job.result))


class LoopLag:
    """How late a 10 ms timer of the event loop fires: work that blocks the loop (the reactor
    thread, in Scrapy) shows up as lag, and delays every other download."""

    INTERVAL = 0.01

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._sample())

    def stop(self) -> float:
        if self._task is not None:
            self._task.cancel()
        return round(self.worst * 1000, 1)

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            planned = loop.time() + self.INTERVAL
            await asyncio.sleep(self.INTERVAL)
            self.worst = max(self.worst, loop.time() - planned)
