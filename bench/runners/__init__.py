"""The measured programs. Each runs in its own fresh process: ``python -m bench.runners JOB``.

Nothing here is imported by the parent beyond :mod:`bench.runners.job`, so that a runner's
process loads only what that runner needs (the aiohttp runner never imports Scrapy).
"""

from __future__ import annotations

RUNNERS: tuple[str, ...] = ("mediapipe", "filespipeline", "aiohttp")
