"""Throughput and memory benchmark of mediapipe against Scrapy's FilesPipeline and plain aiohttp.

Run ``bash bench/run.sh`` (set-up, then ``python -m bench``); see ``bench/README.md``.
"""

from __future__ import annotations
