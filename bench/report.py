"""Medians per runner, ratios, and the results as text, JSON and Markdown."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from bench.measure import Run

MB = 1_000_000
KIB_PER_MIB = 1024
# The product target: mediapipe uploads a 1 GiB video to a bucket at this peak RSS or less.
S3_HUGE_TARGET_MIB = 150


@dataclass(frozen=True, slots=True)
class Summary:
    corpus: str
    runner: str
    runs: int
    runs_ok: int
    files: int
    bytes: int
    wall_s: float
    wall_min: float
    wall_max: float
    files_per_s: float
    mb_per_s: float
    peak_rss_mib: float
    cpu_s: float
    peak_connections: int
    loop_lag_ms: float


def summarize(runs: list[Run]) -> Summary:
    good = [run for run in runs if run.ok] or runs
    median = statistics.median
    return Summary(
        corpus=runs[0].corpus,
        runner=runs[0].runner,
        runs=len(runs),
        runs_ok=sum(run.ok for run in runs),
        files=int(median(run.files for run in good)),
        bytes=int(median(run.bytes for run in good)),
        wall_s=median(run.wall_s for run in good),
        wall_min=min(run.wall_s for run in good),
        wall_max=max(run.wall_s for run in good),
        files_per_s=median(run.files_per_s for run in good),
        mb_per_s=median(run.mb_per_s for run in good),
        peak_rss_mib=median(run.peak_rss_mib for run in good),
        cpu_s=median(run.cpu_s for run in good),
        peak_connections=max(run.peak_connections for run in good),
        loop_lag_ms=median(float(run.stats.get("loop_lag_max_ms", 0.0)) for run in good),
    )


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def corpus_table(summaries: list[Summary]) -> list[str]:
    """Markdown table rows (also readable as plain text)."""
    lines = [
        "| runner | files | MB | wall s (min-max) | files/s | MB/s | peak RSS MiB | CPU s "
        "| conns | loop lag ms | ok |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        lines.append(
            f"| {s.runner} | {s.files} | {s.bytes / MB:.1f} | {s.wall_s:.2f} "
            f"({s.wall_min:.2f}-{s.wall_max:.2f}) | {s.files_per_s:.1f} | {s.mb_per_s:.1f} | "
            f"{s.peak_rss_mib:.0f} | {s.cpu_s:.2f} | {s.peak_connections} | "
            f"{s.loop_lag_ms:.0f} | {s.runs_ok}/{s.runs} |"
        )
    mine = next((s for s in summaries if s.runner == "mediapipe"), None)
    if mine is not None:
        lines.append("")
        for theirs in summaries:
            if theirs is mine:
                continue
            other = theirs.runner
            lines.append(
                f"- mediapipe / {other}: files/s {_ratio(mine.files_per_s, theirs.files_per_s)}, "
                f"MB/s {_ratio(mine.mb_per_s, theirs.mb_per_s)}, "
                f"peak RSS {_ratio(mine.peak_rss_mib, theirs.peak_rss_mib)}, "
                f"CPU {_ratio(mine.cpu_s, theirs.cpu_s)}"
            )
    return lines


def _checkpoint_hwm(run: Run, files: int) -> float | None:
    """VmHWM (MiB) at the first checkpoint at or past ``files`` finished files."""
    for point in run.checkpoints:
        if point["files"] >= files:
            return float(point["vm_hwm_kib"]) / KIB_PER_MIB
    return None


def memory_lines(runs: list[Run], summaries: list[Summary], small_count: int) -> list[str]:
    lines: list[str] = []
    by_key = {(s.corpus, s.runner): s for s in summaries}
    for corpus, label in (
        ("huge", "the 1 GiB file alone"),
        ("large", "the 200 MiB files at once"),
    ):
        found = [s for s in summaries if s.corpus == corpus]
        if found:
            each = ", ".join(f"{s.runner} {s.peak_rss_mib:.0f} MiB" for s in found)
            lines.append(f"- Peak RSS, {label}: {each}.")
    lines.extend(_s3_huge_lines(runs, summaries))
    long_runs = [run for run in runs if run.corpus == "long"]
    if long_runs:
        total = max(run.files for run in long_runs)
        growth: list[str] = []
        for runner in dict.fromkeys(run.runner for run in long_runs):
            mine = [run for run in long_runs if run.runner == runner]
            early = [v for run in mine if (v := _checkpoint_hwm(run, small_count)) is not None]
            late = [v for run in mine if (v := _checkpoint_hwm(run, total)) is not None]
            if early and late:
                text = (
                    f"{runner} {statistics.median(early):.0f} MiB after {small_count} files, "
                    f"{statistics.median(late):.0f} MiB after {total}"
                )
                small = by_key.get(("small", runner))
                if small is not None:
                    text += f" (a crawl of only {small.files} files: {small.peak_rss_mib:.0f} MiB)"
                growth.append(text)
        if growth:
            lines.append("- Peak RSS (VmHWM) during one long crawl: " + "; ".join(growth) + ".")
    return lines


def _s3_huge_lines(runs: list[Run], summaries: list[Summary]) -> list[str]:
    """Peak RSS of the 1 GiB upload to the bucket, and mediapipe's against its target."""
    found = [s for s in summaries if s.corpus == "s3-huge"]
    if not found:
        return []

    def worst(runner: str) -> float:
        return max(r.peak_rss_mib for r in runs if r.corpus == "s3-huge" and r.runner == runner)

    each = ", ".join(
        f"{s.runner} {s.peak_rss_mib:.0f} MiB (worst of {s.runs} runs {worst(s.runner):.0f})"
        for s in found
    )
    lines = [f"- Peak RSS, the 1 GiB file into S3: {each}."]
    mine = next((s for s in found if s.runner == "mediapipe"), None)
    if mine is not None:
        top = worst("mediapipe")
        met = top <= S3_HUGE_TARGET_MIB and mine.runs_ok == mine.runs
        lines.append(
            f"- Target, mediapipe uploads a 1 GiB video to the bucket at <= "
            f"{S3_HUGE_TARGET_MIB} MiB peak RSS of the whole process: "
            f"{'met' if met else 'MISSED'} (worst run {top:.0f} MiB, "
            f"{mine.runs_ok}/{mine.runs} runs verified)."
        )
    return lines


def markdown(
    header: dict[str, Any],
    runs: list[Run],
    summaries: list[Summary],
    titles: dict[str, str],
    corpus_seconds: dict[str, float],
    small_count: int,
) -> str:
    lines = [f"### Benchmark results ({header['date']})", ""]
    servers = f"nginx {header['nginx']}"
    if header.get("seaweedfs"):
        servers += f", SeaweedFS {header['seaweedfs']} (weed mini), boto3 {header['boto3']}"
    if header.get("g4f"):
        servers += (
            f", g4f {header['g4f']} (copyMedia, its own virtualenv: Python "
            f"{header['g4f_python']}, aiohttp {header['g4f_aiohttp']})"
        )
    lines.append(
        f"`{header['command']}` on {header['machine']}; Python {header['python']}, "
        f"Scrapy {header['scrapy']}, aiohttp {header['aiohttp']}, {servers}, "
        f"mediapipe {header['mediapipe']} (source {header['mediapipe_source']}); "
        f"concurrency {header['concurrency']}, "
        f"median of {header['rounds']} interleaved rounds, each run in a fresh process. "
        "MB = 10^6 bytes; wall and CPU cover the download of the whole corpus inside the "
        "runner's process (and its writer process's); peak RSS is the process's ru_maxrss, plus "
        "its writer process's peak when it has one; loop lag is the longest delay "
        "of a 10 ms event-loop timer during the run (the reactor thread blocked); conns is "
        "the most TCP "
        "connections to nginx seen at once (sampled every 0.1 s)."
    )
    lines.append("")
    for corpus, title in titles.items():
        found = [s for s in summaries if s.corpus == corpus]
        if not found:
            continue
        lines.append(f"#### {corpus}: {title} ({corpus_seconds.get(corpus, 0):.0f} s)")
        lines.append("")
        lines.extend(corpus_table(found))
        lines.append("")
    sources = sorted({run.source for run in runs if run.source})
    if len(sources) > 1:
        lines.append(
            f"**The mediapipe source changed during this run** ({', '.join(sources)}): "
            "see `source` of each run in results.json."
        )
        lines.append("")
    memory = memory_lines(runs, summaries, small_count)
    if memory:
        lines.append("#### Memory")
        lines.append("")
        lines.extend(memory)
        lines.append("")
    failed = [run for run in runs if not run.ok]
    if failed:
        lines.append("#### Failed runs")
        lines.append("")
        for run in failed:
            lines.append(f"- {run.corpus} r{run.round} {run.runner}: {describe_failure(run)}")
        lines.append("")
    return "\n".join(lines)


def describe_failure(run: Run) -> str:
    v = run.verification
    parts = []
    if run.error:
        parts.append(run.error.strip().splitlines()[-1])
    if v:
        parts.append(
            f"{v.get('ok')}/{v.get('expected')} verified, failed {v.get('failed')}, "
            f"missing {v.get('missing')}, mismatched {v.get('mismatched')}, "
            f"index problems {v.get('index_problems')}, leftovers {v.get('leftovers')}"
        )
        if v.get("reasons"):
            parts.append(f"reasons {v['reasons']}")
        parts.extend(v.get("examples", [])[:3])
    parts.append(f"log {run.log}")
    return "; ".join(parts)


def write_json(
    path: Path, header: dict[str, Any], runs: list[Run], summaries: list[Summary]
) -> None:
    data = {
        "header": header,
        "summaries": [asdict(summary) for summary in summaries],
        "runs": [run.as_dict() for run in runs],
    }
    path.write_text(json.dumps(data, indent=1, default=str), "utf-8")
