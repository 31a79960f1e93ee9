"""Runs a Python script in a fresh interpreter, as a user's plain script (no reactor) runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_python(folder: Path, name: str, text: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Write ``text`` to ``folder/name`` and run it there with ``args``; it must exit with 0."""
    script = folder / name
    script.write_text(text)
    process = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
        capture_output=True,
        text=True,
        check=False,
    )
    assert process.returncode == 0, process.stderr
    return process


def scrapy_env(*, project: bool = True) -> dict[str, str]:
    """The environment of ``scrapy``: inside the example project, or outside any project."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SCRAPY_")}
    if project:
        env["SCRAPY_SETTINGS_MODULE"] = "spiders.settings"
        env["PYTHONPATH"] = str(ROOT)
    return env


def scrapy(
    folder: Path, *args: str, project: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``scrapy ARGS`` in ``folder``, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "scrapy", *args],
        cwd=folder,
        env=scrapy_env(project=project),
        timeout=timeout,
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=False,
    )


# The spider of the crawl scripts the crash tests run in a subprocess: it yields ITEMS (which
# the script defines) from a callback, so the engine notices their end at once
# (tests/conftest.py says why). The script imports Request and Spider from scrapy.
ITEMS_SPIDER = """
class ItemsSpider(Spider):
    name = "items"

    async def start(self):
        yield Request("data:,", callback=self.emit, dont_filter=True)

    def emit(self, response):
        yield from ITEMS
"""


def items_crawl_script(arguments: str, settings: str, preamble: str = "") -> str:
    """A crawl script run in a subprocess: it unpacks ``arguments`` (which must name
    ``items_file``) from its command line, runs ``preamble``, and crawls the items of that JSON
    file with the add-on, its settings being the common ones below and ``settings`` (lines of a
    dict display)."""
    return f"""
import json
import sys
import time

from scrapy import Request, Spider
from scrapy.crawler import AsyncCrawlerProcess

{arguments} = sys.argv[1:]
{preamble}
with open(items_file, encoding="utf-8") as handle:
    ITEMS = json.load(handle)

{ITEMS_SPIDER}

process = AsyncCrawlerProcess(
    {{
        "ADDONS": {{"mediapipe.Addon": 300}},
        "MEDIAPIPE_ALLOW_PRIVATE_NETWORKS": True,
        "MEDIAPIPE_RETRY_TIMES": 0,
        "RETRY_ENABLED": False,
        "LOG_LEVEL": "INFO",
{settings}
    }}
)
process.crawl(ItemsSpider)
process.start()
"""
