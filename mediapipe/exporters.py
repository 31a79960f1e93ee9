"""Feed exporters that write the ``media`` records so that other programs can read them back."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from scrapy.exporters import CsvItemExporter as ScrapyCsvItemExporter
from scrapy.exporters import XmlItemExporter as ScrapyXmlItemExporter


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


class XmlItemExporter(ScrapyXmlItemExporter):
    """Scrapy's XML exporter, except that None becomes an empty element.

    Scrapy's own writes the text ``None``, which reads back as the string "None" (a record's
    ``reason`` or ``width``). The element is kept rather than left out so that every record has
    the same elements and a list keeps its positions: entry *i* of ``images`` still belongs to
    record *i* of ``media`` when a source was ``None``.
    """

    def serialize_field(self, field: Any, name: str, value: Any) -> Any:
        return _blank_none(super().serialize_field(field, name, value))


def _blank_none(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, Mapping):
        return {key: _blank_none(entry) for key, entry in value.items()}
    if isinstance(value, list | tuple):
        return [_blank_none(entry) for entry in value]
    return value
