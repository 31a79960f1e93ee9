"""``python -m bench.runners JOB.json``: run one measured job in this (fresh) process."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

from bench.runners.job import Job, Meter


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bench.runners JOB.json", file=sys.stderr)
        return 2
    job = Job.load(Path(argv[0]))
    meter = Meter(job)
    try:
        if job.runner == "aiohttp":
            from bench.runners.aiohttp_runner import run
        elif job.runner == "mediapipe":
            from bench.runners.scrapy_runner import run_mediapipe as run
        elif job.runner == "filespipeline":
            from bench.runners.scrapy_runner import run_filespipeline as run
        elif job.runner == "scrapy-downloader":
            from bench.runners.scrapy_runner import run_downloader as run
        elif job.runner == "copyMedia":  # under bench/.work/venv-g4f's interpreter
            from bench.runners.copymedia_runner import run
        else:
            raise ValueError(f"unknown runner {job.runner!r}")
        run(job, meter)
    except Exception:
        meter.outcome.error = traceback.format_exc()
        traceback.print_exc()
    meter.finish()
    return 1 if meter.outcome.error else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
