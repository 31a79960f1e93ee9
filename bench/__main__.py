"""``python -m bench``: corpus, nginx, interleaved rounds of every runner, verification, report.

``bash bench/run.sh`` runs the set-up step first and then this; see ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.corpus import Corpus
from bench.measure import MB, Run, delete_outputs, run_once, runner_python
from bench.report import (
    corpus_table,
    describe_failure,
    markdown,
    memory_lines,
    summarize,
    write_json,
)
from bench.runners import LOCAL_ONLY, RUNNERS, SMALL_ONLY
from bench.runners.job import source_fingerprint
from bench.s3 import SeaweedFS
from bench.server import Nginx
from bench.workloads import ALL_CORPORA, CORPORA, S3_CORPORA, Workload, make_workload

WORK = Path(__file__).resolve().parent / ".work"
# A corpus of more files than this keeps its runs' outputs until its last round.
MANY_FILES = 100


def _csv(choices: tuple[str, ...]) -> Any:
    def parse(text: str) -> list[str]:
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in names if name not in choices]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(choices)}")
        return names

    return parse


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 300 small files and one 200 MiB file, no 1 GiB file, no long crawl",
    )
    parser.add_argument(
        "--corpora",
        type=_csv(ALL_CORPORA),
        help=f"corpora to measure (default: {','.join(CORPORA)}; the S3 corpora "
        f"{','.join(S3_CORPORA)} only when named)",
    )
    parser.add_argument(
        "--runners",
        type=_csv(RUNNERS),
        help=f"runners of every corpus but the long crawl (default: all on small; "
        f"{','.join(r for r in RUNNERS if r not in SMALL_ONLY)} on the others; "
        f"{','.join(r for r in RUNNERS if r not in LOCAL_ONLY)} on the S3 corpora)",
    )
    parser.add_argument(
        "--long-runners",
        type=_csv(RUNNERS),
        default=["mediapipe"],
        help="runners of the long crawl (default: mediapipe)",
    )
    parser.add_argument("--no-long", action="store_true", help="skip the long crawl")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per corpus (default 3)")
    parser.add_argument(
        "--long-rounds", type=int, default=3, help="rounds of the long crawl (default 3)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=16,
        help="concurrent downloads, the same for every runner (default 16)",
    )
    parser.add_argument("--small", type=int, help="small images (default 2000, quick 300)")
    parser.add_argument("--large", type=int, help="200 MiB files (default 3, quick 1)")
    parser.add_argument(
        "--s3-small", type=int, help="small images of the s3-small corpus (default 1000, quick 300)"
    )
    parser.add_argument(
        "--long", type=int, default=20_000, help="sources of the long crawl (default 20000)"
    )
    parser.add_argument(
        "--urls-per-item", type=int, default=20, help="URLs per scraped item (default 20)"
    )
    parser.add_argument(
        "--run-timeout",
        type=float,
        default=900.0,
        help="seconds before a run is stopped (default 900)",
    )
    parser.add_argument(
        "--keep-outputs",
        action="store_true",
        help="keep what each run stored (default: delete it after the last round of its corpus)",
    )
    parser.add_argument(
        "--verify-corpus",
        action="store_true",
        help="re-hash the existing corpus instead of trusting size and mtime",
    )
    parser.add_argument("--work", type=Path, default=WORK, help="work folder (bench/.work)")
    args = parser.parse_args(argv)
    if args.corpora is None:
        args.corpora = ["small", "large"] if args.quick else list(CORPORA)
    if args.no_long and "long" in args.corpora:
        args.corpora.remove("long")
    args.small = args.small or (300 if args.quick else 2000)
    args.large = args.large or (1 if args.quick else 3)
    args.s3_small = args.s3_small or (300 if args.quick else 1000)
    if min(args.rounds, args.long_rounds, args.concurrency, args.urls_per_item) < 1:
        parser.error("--rounds, --long-rounds, --concurrency and --urls-per-item must be >= 1")
    return args


def runners_of(workload: Workload, args: argparse.Namespace) -> list[str]:
    """Which runners measure a corpus, in the order of round 1."""
    if workload.name == "long":
        return list(args.long_runners)
    if args.runners is not None:
        runners = list(args.runners)
    elif workload.name == "small":
        runners = list(RUNNERS)
    else:
        runners = [runner for runner in RUNNERS if runner not in SMALL_ONLY]
    if workload.s3:  # the S3 corpora compare the two pipelines' stores
        runners = [runner for runner in runners if runner not in LOCAL_ONLY]
    return runners


def _g4f_versions() -> dict[str, str]:
    """g4f and aiohttp as the copyMedia runner's interpreter has them."""
    code = (
        "from importlib.metadata import version as v; import platform; "
        "print(v('g4f'), v('aiohttp'), platform.python_version())"
    )
    python = runner_python("copyMedia")
    try:
        done = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise SystemExit(
            f"the copyMedia runner needs {python} with g4f (bash bench/setup.sh makes it): {exc}"
        ) from exc
    g4f, aiohttp, python_version = done.stdout.split()
    return {"g4f": g4f, "g4f_aiohttp": aiohttp, "g4f_python": python_version}


def _header(
    args: argparse.Namespace, server: Nginx, s3: SeaweedFS | None, argv: list[str]
) -> dict[str, Any]:
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "?"

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": os.environ.get("BENCH_COMMAND") or shlex.join(["python", "-m", "bench", *argv]),
        "machine": f"{os.cpu_count()} cores, {memory:.0f} GiB RAM, {platform.platform()}",
        "python": platform.python_version(),
        "scrapy": version("scrapy"),
        "aiohttp": version("aiohttp"),
        "mediapipe": version("scrapy-mediapipe"),
        "mediapipe_source": source_fingerprint(),
        "nginx": server.version,
        "seaweedfs": s3.version if s3 else None,
        "boto3": version("boto3") if s3 else None,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "long_rounds": args.long_rounds,
    }


def _check_server(server: Nginx, workloads: list[Workload]) -> None:
    """One request per kind of file: nginx must answer 200 with the expected type."""
    wanted = {
        ".jpg": "image/jpeg",
        ".png": "image/png",
        ".gif": "image/gif",
        ".webp": "image/webp",
        ".mp4": "video/mp4",
        "": "application/octet-stream",
    }
    seen: set[str] = set()
    for workload in workloads:
        for path in workload.paths:
            ext = os.path.splitext(path)[1]
            if ext in seen:
                continue
            seen.add(ext)
            request = urllib.request.Request(server.url(path), method="HEAD")
            with urllib.request.urlopen(request, timeout=10) as answer:
                kind = answer.headers.get("Content-Type")
                if answer.status != 200 or kind != wanted[ext]:
                    raise RuntimeError(f"nginx served {path} as {answer.status} {kind}")


def _print_run(run: Run) -> None:
    verdict = "verified OK" if run.ok else "FAILED: " + describe_failure(run)
    if run.source:
        verdict += f" [mediapipe source {run.source}]"
    print(
        f"  [{run.corpus} r{run.round} {run.runner:>17}] {run.files} files "
        f"{run.bytes / MB:.1f} MB in {run.wall_s:.2f} s: {run.files_per_s:.1f} files/s, "
        f"{run.mb_per_s:.1f} MB/s, peak RSS {run.peak_rss_mib:.0f} MiB, "
        f"CPU {run.cpu_s:.2f} s, {run.peak_connections} conns "
        f"(process {run.process_wall_s:.1f} s) - {verdict}",
        flush=True,
    )


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    work: Path = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    workloads = [
        make_workload(name, args.small, args.large, args.long, args.urls_per_item, args.s3_small)
        for name in ALL_CORPORA
        if name in args.corpora
    ]

    # The copyMedia runner's interpreter is checked first: without it, nothing is measured.
    g4f = {}
    if any("copyMedia" in runners_of(workload, args) for workload in workloads):
        g4f = _g4f_versions()

    corpus = Corpus(work / "corpus")
    needed = sorted({path for workload in workloads for path in workload.paths})
    print(f"corpus: checking {len(needed)} files in {corpus.root}", flush=True)
    started = time.perf_counter()
    made = corpus.ensure(needed, rehash=args.verify_corpus)
    print(f"corpus: made {made} files in {time.perf_counter() - started:.1f} s", flush=True)

    runs: list[Run] = []
    corpus_seconds: dict[str, float] = {}
    with contextlib.ExitStack() as servers:
        server = servers.enter_context(Nginx(corpus.root, work / "nginx"))
        pid = server.process.pid if server.process else None
        print(f"nginx {server.version} on {server.url('')} (pid {pid})", flush=True)
        _check_server(server, workloads)
        s3 = None
        if any(workload.s3 for workload in workloads):
            started = time.perf_counter()
            s3 = servers.enter_context(SeaweedFS(work / "seaweedfs"))
            pid = s3.process.pid if s3.process else None
            print(
                f"SeaweedFS {s3.version} (weed mini) on {s3.endpoint} (pid {pid}), ready in "
                f"{time.perf_counter() - started:.1f} s",
                flush=True,
            )
        header = _header(args, server, s3, argv) | g4f
        base = server.url("").rstrip("/")
        for workload in workloads:
            runners = runners_of(workload, args)
            if not runners:
                continue
            rounds = args.long_rounds if workload.name == "long" else args.rounds
            print(
                f"\n{workload.name}: {workload.title}; {workload.url_count} URLs, "
                f"{rounds} rounds of {', '.join(runners)}",
                flush=True,
            )
            started = time.perf_counter()
            corpus.warm(workload.paths)
            # Many files: deleted after the last round (see delete_outputs). A few large ones:
            # deleted after each run, or their dirty pages would slow the next runs' writes.
            stored: list[Path] | None = [] if len(workload.paths) > MANY_FILES else None
            for number in range(1, rounds + 1):
                shift = (number - 1) % len(runners)
                for runner in runners[shift:] + runners[:shift]:
                    run = run_once(
                        workload,
                        runner,
                        number,
                        base_url=base,
                        manifest=corpus.entries,
                        runs_dir=work / "runs",
                        concurrency=args.concurrency,
                        timeout=args.run_timeout,
                        keep_outputs=args.keep_outputs,
                        s3=s3,
                        stored=stored,
                    )
                    runs.append(run)
                    _print_run(run)
            if stored is not None:
                delete_outputs(stored)
            corpus_seconds[workload.name] = time.perf_counter() - started
            print(f"{workload.name}: {corpus_seconds[workload.name]:.0f} s", flush=True)

    summaries = []
    for workload in workloads:
        for runner in RUNNERS:
            mine = [run for run in runs if run.corpus == workload.name and run.runner == runner]
            if mine:
                summaries.append(summarize(mine))
    titles = {workload.name: workload.title for workload in workloads}
    header["corpus_seconds"] = {name: round(value, 1) for name, value in corpus_seconds.items()}
    header["total_seconds"] = round(time.perf_counter() - began, 1)

    print()
    for workload in workloads:
        if workload.name not in corpus_seconds:
            continue
        found = [s for s in summaries if s.corpus == workload.name]
        print(f"== {workload.name}: {workload.title} ({corpus_seconds[workload.name]:.0f} s)")
        print("\n".join(corpus_table(found)))
        print()
    for line in memory_lines(runs, summaries, args.small):
        print(line)
    sources = sorted({run.source for run in runs if run.source})
    if len(sources) > 1:
        print(f"WARNING: the mediapipe source changed during this run: {', '.join(sources)}")
    text = markdown(header, runs, summaries, titles, corpus_seconds, args.small)
    (work / "results.md").write_text(text + "\n", "utf-8")
    write_json(work / "results.json", header, runs, summaries)
    # Every run's results are kept too: results.md and results.json are only the latest.
    history = work / "history"
    history.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    (history / f"{stamp}-results.md").write_text(text + "\n", "utf-8")
    write_json(history / f"{stamp}-results.json", header, runs, summaries)
    print(
        f"\nresults: {work / 'results.md'} and {work / 'results.json'} "
        f"({header['total_seconds']:.0f} s in all)"
    )
    failed = [run for run in runs if not run.ok]
    if failed:
        print(
            f"\n!!! {len(failed)} of {len(runs)} runs FAILED (see above and results.md)",
            file=sys.stderr,
        )
        return 1
    return 0


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    sys.exit(main(sys.argv[1:]))
