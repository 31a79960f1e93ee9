"""The measured programs. Each runs in its own fresh process: ``python -m bench.runners JOB``.

Nothing here is imported by the parent beyond :mod:`bench.runners.job`, so that a runner's
process loads only what that runner needs (the aiohttp runner never imports Scrapy). The
``copyMedia`` runner runs under another interpreter, the one of ``bench/.work/venv-g4f`` (made
by ``bench/setup.sh``), which has g4f and aiohttp but neither Scrapy nor mediapipe: the protocol
(:mod:`bench.runners.job`) and this package import only the standard library.
"""

from __future__ import annotations

RUNNERS: tuple[str, ...] = (
    "mediapipe",
    "filespipeline",
    "aiohttp",
    "copyMedia",
    "scrapy-downloader",
)
# Measured on the small corpus only unless named with --runners (see bench/README.md).
SMALL_ONLY: tuple[str, ...] = ("copyMedia", "scrapy-downloader")
# No S3 store: left out of the S3 corpora.
LOCAL_ONLY: tuple[str, ...] = ("aiohttp", "copyMedia", "scrapy-downloader")
# Keep nothing: the runner hashes each body against the corpus manifest itself.
MEMORY_ONLY: tuple[str, ...] = ("scrapy-downloader",)
