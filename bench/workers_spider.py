"""The comparison worker of ``python -m bench.workers``: the example worker spider's crawl
(scrapy-redis queue, the same pages and links), but its items carry ``file_urls`` for Scrapy's
own ``FilesPipeline``, and the mediapipe add-on is off.

Loaded with ``-s SPIDER_MODULES=bench.workers_spider``; run as ``scrapy crawl files_worker``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# Importing it also silences scrapy-redis 0.9.1's deprecation warnings, as for the worker.
from spiders.spiders.worker import WorkerSpider

if TYPE_CHECKING:
    from scrapy.http import Response


class FilesWorkerSpider(WorkerSpider):
    name = "files_worker"
    redis_key = "files_worker:start_urls"
    custom_settings = {  # noqa: RUF012 - Scrapy's own class attribute
        **WorkerSpider.custom_settings,
        "MEDIAPIPE_CLAIMS": False,
        # The project's settings enable mediapipe.Addon; this worker runs without it.
        "ADDONS": {},
        "ITEM_PIPELINES": {"scrapy.pipelines.files.FilesPipeline": 1},
    }

    def page_item(self, response: Response, alts: dict[str, str]) -> dict[str, Any]:
        return {"page": response.url, "file_urls": list(alts)}
