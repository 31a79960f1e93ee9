"""The feed exporters: ``media`` records in XML and CSV, as files other programs read back."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

import pytest
import pytest_twisted

from mediapipe.exporters import CsvItemExporter, XmlItemExporter

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import Crawl
    from tests.mockserver import MockServer

BOM = b"\xef\xbb\xbf"
RECORD_KEYS = ["source", "url", "path", "status", "reason", "mime", "size", "sha256", "width"]


def export(exporter_class: type, items: list[dict[str, Any]], **options: Any) -> bytes:
    stream = io.BytesIO()
    exporter = exporter_class(stream, **options)
    exporter.start_exporting()
    for item in items:
        exporter.export_item(item)
    exporter.finish_exporting()
    return stream.getvalue()


def elements(parent: ET.Element, name: str) -> list[ET.Element]:
    return list(parent.iter(name))


# -- XML -----------------------------------------------------------------------------------------


def test_xml_writes_none_as_an_empty_element_and_keeps_positions() -> None:
    item = {
        "title": None,
        "images": ["/media/a.png", None, "/static/b.png"],
        "media": [
            {"status": "data", "reason": None, "width": 1, "height": 1},
            {"status": "local", "reason": None, "width": None, "height": None},
            {"status": "failed", "reason": "http-404", "width": None, "height": None},
        ],
    }

    data = export(XmlItemExporter, [item])

    assert b"None" not in data
    assert data == (
        b'<?xml version="1.0" encoding="utf-8"?>\n<items><item>'
        b"<title></title>"
        b"<images><value>/media/a.png</value><value></value><value>/static/b.png</value></images>"
        b"<media>"
        b"<value><status>data</status><reason></reason><width>1</width><height>1</height></value>"
        b"<value><status>local</status><reason></reason><width></width><height></height></value>"
        b"<value><status>failed</status><reason>http-404</reason><width></width><height></height>"
        b"</value>"
        b"</media></item></items>"
    )
    [parsed] = ET.fromstring(data)
    assert [value.text for value in elements(parsed, "images")[0]] == [
        "/media/a.png",
        None,
        "/static/b.png",
    ]


def test_xml_leaves_other_values_as_scrapy_writes_them() -> None:
    item = {"count": 0, "flag": False, "nested": {"inner": None, "word": "été"}}

    data = export(XmlItemExporter, [item], indent=2)

    assert data.decode("utf-8").splitlines()[1:] == [
        "<items>",
        "  <item>",
        "    <count>0</count>",
        "    <flag>False</flag>",
        "    <nested>",
        "      <inner></inner>",
        "      <word>été</word>",
        "    </nested>",
        "  </item>",
        "</items>",
    ]


# -- CSV -----------------------------------------------------------------------------------------


def test_csv_with_utf8_sig_starts_with_one_bom_and_round_trips() -> None:
    items = [
        {"name": "猫", "media": [{"path": "1_猫_été.png", "reason": None}]},
        {"name": "Ä, Ö", "media": [{"path": "2_ÄÖÜ.png", "reason": None}]},
    ]

    data = export(CsvItemExporter, items, encoding="utf-8-sig")

    assert data.startswith(BOM + b"name,media\r\n")
    assert data.count(BOM) == 1
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert [row["name"] for row in rows] == ["猫", "Ä, Ö"]
    assert [json.loads(row["media"]) for row in rows] == [item["media"] for item in items]


# -- in a crawl, through FEEDS -------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_xml_feed_of_a_crawl_has_empty_elements_for_null_fields(
    crawl: Crawl, server: MockServer, tmp_path: Path
) -> None:
    xml_path = tmp_path / "out.xml"
    sources = [f"{server.url}/img/png", f"{server.url}/audio/wav", None, f"{server.url}/status/404"]

    result = await crawl(
        [{"images": sources, "alt": "猫"}], {"FEEDS": {str(xml_path): {"format": "xml"}}}
    )

    assert result.stat("feedexport/success_count/FileFeedStorage") == 1
    data = xml_path.read_bytes()
    assert b"None" not in data
    [item] = ET.fromstring(data)
    records = [{child.tag: child.text for child in value} for value in elements(item, "media")[0]]
    [exported] = result.items
    assert [list(record)[: len(RECORD_KEYS)] for record in records] == [RECORD_KEYS] * 4
    for record, original in zip(records, exported["media"], strict=True):
        # An empty element reads back as no text: the record's null.
        assert record == {
            key: None if value is None else str(value) for key, value in original.items()
        }
    statuses = [record["status"] for record in records]
    assert statuses == ["downloaded", "downloaded", "local", "failed"]
    assert (records[0]["width"], records[0]["height"]) == ("8", "6")
    assert (records[1]["width"], records[1]["reason"]) == (None, None)  # a sound: no pixels
    images = [value.text for value in elements(item, "images")[0]]
    assert images == [*exported["images"][:2], None, sources[3]]


@pytest.mark.parametrize(
    ("settings", "feed_options"),
    [
        ({"FEED_EXPORT_ENCODING": "utf-8-sig"}, {}),
        ({"FEED_EXPORT_ENCODING": "utf-8"}, {"encoding": "utf-8-sig"}),
    ],
    ids=["FEED_EXPORT_ENCODING", "per-feed-encoding"],
)
@pytest_twisted.ensureDeferred
async def test_csv_feed_for_spreadsheets_starts_with_a_bom(
    crawl: Crawl,
    server: MockServer,
    tmp_path: Path,
    settings: dict[str, Any],
    feed_options: dict[str, Any],
) -> None:
    csv_path = tmp_path / "out.csv"
    items = [
        {"name": "猫", "images": [f"{server.url}/img/png?猫"], "tags": ["猫", "été"]},
        {"name": "Ärger", "images": [f"{server.url}/img/gif"], "alt": "ÄÖÜ — ß"},
    ]
    feeds = {str(csv_path): {"format": "csv", **feed_options}}

    result = await crawl(items, {**settings, "FEEDS": feeds})

    data = csv_path.read_bytes()
    assert data.startswith(BOM)
    assert data.count(BOM) == 1
    with csv_path.open(encoding="utf-8-sig", newline="") as stream:
        rows = {row["name"]: row for row in csv.DictReader(stream)}
    assert set(rows) == {"猫", "Ärger"}
    for item in result.items:
        row = rows[item["name"]]
        assert json.loads(row["media"]) == item["media"]
        assert row["images"] == ",".join(item["images"])
    cat_path = json.loads(rows["猫"]["media"])[0]["path"]
    assert "猫+été_" in cat_path
    assert "ÄÖÜ_ß_" in json.loads(rows["Ärger"]["media"])[0]["path"]
    assert (crawl.store / cat_path).is_file()
