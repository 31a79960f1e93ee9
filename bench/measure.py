"""Run one runner on one workload in a fresh process, then verify what it stored."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bench.runners import MEMORY_ONLY
from bench.runners.job import Job, Outcome
from bench.s3 import delete_prefix
from bench.server import die_with_parent
from bench.verify import Verification, verify, verify_s3

if TYPE_CHECKING:
    from collections.abc import Mapping

    from bench.corpus import Entry
    from bench.s3 import SeaweedFS
    from bench.workloads import Workload

REPO = Path(__file__).resolve().parent.parent
MB = 1_000_000
MIB = 1024 * 1024
# The copyMedia runner's own virtualenv (g4f==8.8.6), made by bench/setup.sh; never the
# project's. BENCH_G4F_PYTHON names another interpreter that has g4f.
G4F_VENV = REPO / "bench" / ".work" / "venv-g4f"


def runner_python(runner: str) -> str:
    """The interpreter a runner's process starts with. Each finds the bench package through
    PYTHONPATH (the repository), so the job protocol is the same under either."""
    if runner == "copyMedia":
        return os.environ.get("BENCH_G4F_PYTHON") or str(G4F_VENV / "bin" / "python")
    return sys.executable


@dataclass(slots=True)
class Run:
    corpus: str
    runner: str
    round: int
    files: int = 0
    bytes: int = 0
    wall_s: float = 0.0  # start of the work to the last stored file, inside the process
    runner_s: float = 0.0  # start of the work until the runner returned (shutdown included)
    cpu_s: float = 0.0  # user + system CPU of the measured section
    # ru_maxrss of the runner's process (wait4), whole life; plus its writer process's, if any
    peak_rss_mib: float = 0.0
    process_wall_s: float = 0.0  # the process from spawn to exit, imports included
    process_cpu_s: float = 0.0  # user + system CPU of the whole process
    peak_connections: int = 0  # to nginx at once, sampled every 0.1 s by the parent
    exit_code: int = 0
    source: str = ""  # the mediapipe source the runner used (mediapipe runs only)
    store: str = ""  # where it stored: a local folder or s3://bucket/prefix/
    error: str | None = None
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    verification: dict[str, Any] = field(default_factory=dict)
    log: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.verification.get("passed"))

    @property
    def files_per_s(self) -> float:
        return self.files / self.wall_s if self.wall_s else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes / MB / self.wall_s if self.wall_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "ok": self.ok,
            "files_per_s": round(self.files_per_s, 2),
            "mb_per_s": round(self.mb_per_s, 2),
        }


def open_connections(port: int) -> int:
    """Established IPv4 TCP connections to ``port`` on this machine (client ends)."""
    wanted = f":{port:04X}"
    count = 0
    try:
        with open("/proc/net/tcp", encoding="ascii") as table:
            next(table)
            for line in table:
                fields = line.split(None, 4)
                if fields[2].endswith(wanted) and fields[3] == "01":
                    count += 1
    except OSError:
        return 0
    return count


class _Watch:
    """What the parent sees of a running child: the peak count of connections to nginx."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.peak_connections = 0
        self._next = 0.0

    def sample(self) -> None:
        now = time.monotonic()
        if now >= self._next:
            self._next = now + 0.1
            self.peak_connections = max(self.peak_connections, open_connections(self.port))


def _wait(process: subprocess.Popen[bytes], timeout: float, watch: _Watch) -> tuple[int, Any, bool]:
    """Reap our child with wait4, which gives that child's own resource usage."""
    deadline = time.monotonic() + timeout
    timed_out = False
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid == process.pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return process.returncode, usage, timed_out
        watch.sample()
        if time.monotonic() > deadline and not timed_out:
            timed_out = True
            process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 15
        elif timed_out and time.monotonic() > deadline:
            process.kill()
            deadline = time.monotonic() + 3600
        time.sleep(0.02)


def run_once(
    workload: Workload,
    runner: str,
    round_number: int,
    *,
    base_url: str,
    manifest: Mapping[str, Entry],
    runs_dir: Path,
    concurrency: int,
    timeout: float,
    keep_outputs: bool,
    s3: SeaweedFS | None = None,
    stored: list[Path] | None = None,
) -> Run:
    """One run, verified. A local output is deleted at once, or appended to ``stored`` for the
    caller to delete after the corpus's last round: see :func:`delete_outputs`."""
    run_dir = runs_dir / f"{workload.name}-r{round_number}-{runner}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    urls = workload.urls(base_url)
    (run_dir / "urls.txt").write_text("\n".join(urls) + "\n", "utf-8")
    place = None
    out_dir = str(run_dir / "out")
    if workload.s3:
        if s3 is None:
            raise ValueError(f"{workload.name} needs the S3 server")
        # A fresh prefix for every run, even for a run of the same name in a later invocation.
        place = s3.place(f"{run_dir.name}-{uuid.uuid4().hex[:8]}")
        out_dir = place.uri
    job = Job(
        runner=runner,
        urls_file=str(run_dir / "urls.txt"),
        out_dir=out_dir,
        records=str(run_dir / "records.jsonl"),
        result=str(run_dir / "result.json"),
        concurrency=concurrency,
        urls_per_item=workload.urls_per_item,
        checkpoint_every=workload.checkpoint_every,
        s3_settings=place.scrapy_settings() if place else None,
        temp_dir=str(run_dir / "tmp") if place else None,
        expected_file=str(run_dir / "expected.json") if runner in MEMORY_ONLY else None,
    )
    if job.expected_file is not None:
        expected = {path: manifest[path].sha256 for path in workload.paths}
        Path(job.expected_file).write_text(json.dumps(expected), "utf-8")
    job.save(run_dir / "job.json")
    run = Run(workload.name, runner, round_number, store=out_dir, log=str(run_dir / "runner.log"))
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = os.environ | {"PYTHONPATH": path}
    env.pop("SCRAPY_SETTINGS_MODULE", None)
    os.sync()  # the previous run's writes must not be flushed during this one
    started = time.perf_counter()
    with (run_dir / "runner.log").open("wb") as log:
        process = subprocess.Popen(
            [runner_python(runner), "-m", "bench.runners", str(run_dir / "job.json")],
            cwd=run_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
        watch = _Watch(urlsplit(base_url).port or 80)
        code, usage, timed_out = _wait(process, timeout, watch)
    run.peak_connections = watch.peak_connections
    run.process_wall_s = time.perf_counter() - started
    run.exit_code = code
    run.process_cpu_s = usage.ru_utime + usage.ru_stime
    run.peak_rss_mib = usage.ru_maxrss / 1024  # KiB on Linux
    if timed_out:
        run.error = f"timed out after {timeout:.0f} s and was stopped"
    try:
        outcome = Outcome.load(Path(job.result))
    except (OSError, ValueError, TypeError) as exc:
        outcome = Outcome(error=run.error or f"no result (exit code {code}): {exc}")
    run.error = run.error or outcome.error or (f"exit code {code}" if code else None)
    run.wall_s = outcome.wall_s
    run.runner_s = outcome.total_s
    # A writer process works for the crawl: its CPU counts, and its memory adds to the crawl's.
    run.cpu_s = outcome.cpu_user_s + outcome.cpu_sys_s + outcome.helper_cpu_s
    if outcome.helper_peak_rss_kib:
        run.peak_rss_mib = (outcome.vm_hwm_kib + outcome.helper_peak_rss_kib) / 1024
    run.checkpoints = [asdict(point) for point in outcome.checkpoints]
    run.stats = outcome.stats
    run.source = outcome.source
    checked: Verification
    if place is not None:
        temp_dir = run_dir / "tmp"
        checked = verify_s3(runner, urls, Path(job.records), place, temp_dir, manifest)
        if not keep_outputs:
            delete_prefix(place)
            shutil.rmtree(temp_dir, ignore_errors=True)
    else:
        checked = verify(runner, urls, Path(job.records), Path(job.out_dir), manifest)
        if not keep_outputs:
            if stored is not None:
                stored.append(Path(job.out_dir))
            else:
                shutil.rmtree(job.out_dir, ignore_errors=True)
            if job.expected_file is not None:
                Path(job.expected_file).unlink(missing_ok=True)
    run.verification = checked.as_dict()
    run.files = checked.ok
    run.bytes = checked.ok_bytes
    return run


def delete_outputs(stored: list[Path]) -> None:
    """Delete the outputs of a corpus's runs, once all its rounds are done.

    Not between runs: for a minute or more after files are deleted, ext4 skips their inodes
    when it allocates new ones, and checks each one it skips (``recently_deleted`` and
    ``find_inode_bit`` in a system-wide ``perf`` profile of a run): the next run would pay for
    the deletions of the one before, the more so the more files it creates."""
    for path in stored:
        shutil.rmtree(path, ignore_errors=True)
    stored.clear()
