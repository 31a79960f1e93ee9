"""A CSV exporter that writes structured fields (the ``media`` records) as JSON."""

from __future__ import annotations

import json
from typing import Any

from scrapy.exporters import CsvItemExporter as ScrapyCsvItemExporter


class CsvItemExporter(ScrapyCsvItemExporter):
    """Scrapy's CSV exporter, except that lists holding dicts and dicts become JSON text.

    Scrapy's own would write their Python ``repr``, which no CSV reader can parse back.
    """

    def serialize_field(self, field: Any, name: str, value: Any) -> Any:
        if isinstance(value, dict) or (
            isinstance(value, list | tuple) and any(isinstance(v, dict | list) for v in value)
        ):
            return json.dumps(value, ensure_ascii=False)
        return super().serialize_field(field, name, value)
