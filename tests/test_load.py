"""A load run: 10,000 sources in 1,000 items against the loopback server, 5 % of them faults
of mixed kinds; every input gets exactly one record and every stored byte is checked."""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest
import pytest_twisted

from tests import media
from tests.storecheck import leftovers, stored_files

if TYPE_CHECKING:
    from tests.conftest import Crawl
    from tests.mockserver import MockServer

ITEMS = 1_000
PER_ITEM = 10
FAULT_EVERY = 20  # 5 %
MAX_SIZE = 32 * 1024  # below /big/declared (64 KiB), far above the good files

GOOD: list[tuple[str, bytes]] = [
    ("/img/png", media.PNG),
    ("/img/gif", media.GIF),
    ("/img/jpeg", media.JPEG),
]
FAULTS: list[tuple[str, str]] = [
    ("/status/404", "http-404"),
    ("/status/500", "http-500"),
    ("/img/page", "content-type"),
    ("/img/html-as-png", "content-mismatch"),
    ("/img/empty", "empty"),
    ("/img/octet-noise", "unknown-format"),
    ("/truncated", "truncated"),
    ("/big/declared", "too-large"),
]


def build_items(
    base: str,
) -> tuple[list[dict[str, Any]], dict[str, bytes], dict[str, str]]:
    """The items, the expected bytes of each good source, the reason of each fault."""
    items: list[dict[str, Any]] = []
    good: dict[str, bytes] = {}
    faults: dict[str, str] = {}
    number = 0
    for item_id in range(ITEMS):
        sources: list[str] = []
        for _ in range(PER_ITEM):
            if number % FAULT_EVERY == FAULT_EVERY - 1:
                path, reason = FAULTS[(number // FAULT_EVERY) % len(FAULTS)]
                source = f"{base}{path}?fault={number}"
                faults[source] = reason
            else:
                path, payload = GOOD[number % len(GOOD)]
                source = f"{base}{path}?n={number}"
                good[source] = payload
            sources.append(source)
            number += 1
        items.append({"id": item_id, "images": sources})
    return items, good, faults


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_ten_thousand_sources_with_five_percent_faults(
    crawl: Crawl, server: MockServer
) -> None:
    items, good, faults = build_items(server.url)
    inputs = {item["id"]: list(item["images"]) for item in items}
    settings = {
        "CONCURRENT_REQUESTS": 16,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
        "LOG_LEVEL": "INFO",
        "MEDIAPIPE_MAX_SIZE": MAX_SIZE,
    }
    started = time.perf_counter()
    result = await crawl(items, settings, log_level=logging.INFO)
    wall = time.perf_counter() - started

    sources = ITEMS * PER_ITEM
    assert len(good) + len(faults) == sources
    assert len(faults) == sources // FAULT_EVERY
    # One record per input, in input order, per item.
    assert sorted(item["id"] for item in result.items) == list(range(ITEMS))
    records = []
    for item in result.items:
        expected = inputs[item["id"]]
        assert [record["source"] for record in item["media"]] == expected
        assert [record["url"] for record in item["media"]] == item["images"]
        records.extend(item["media"])
    assert len(records) == sources

    injected = Counter(faults.values())
    statuses = Counter(record["status"] for record in records)
    reasons = Counter(record["reason"] for record in records if record["status"] == "failed")
    for record in records:
        if record["source"] in faults:
            assert record["status"] == "failed", record
            assert record["reason"] == faults[record["source"]], record
            assert record["path"] is None
        else:
            assert record["status"] == "downloaded", record
    assert reasons == injected
    failed_stats = {
        name.removeprefix("mediapipe/failed/"): value
        for name, value in result.stats.items()
        if name.startswith("mediapipe/failed/")
    }
    assert failed_stats == dict(injected)
    assert result.stat("mediapipe/status/downloaded") == len(good)
    assert result.stat("mediapipe/status/failed") == len(faults)
    assert result.stat("mediapipe/sources") == sources
    assert len(result.warnings) == len(faults)

    # Every stored file is what the server served, and nothing else is in the store.
    files = stored_files(result.store)
    expected_files = {
        record["path"]: good[record["source"]] for record in records if record["path"] is not None
    }
    assert len(expected_files) == len(good)
    assert set(files) == set(expected_files)
    mismatched = [path for path, data in files.items() if data != expected_files[path]]
    assert mismatched == []
    for record in records:
        if record["path"] is not None:
            assert record["sha256"] == hashlib.sha256(good[record["source"]]).hexdigest()
    assert leftovers(result.store) == []

    print(
        f"\nload: {sources} sources in {ITEMS} items; {len(faults)} faults injected "
        f"({', '.join(f'{reason}: {count}' for reason, count in sorted(injected.items()))}); "
        f"results: {dict(sorted(statuses.items()))}; "
        f"failed by reason: {dict(sorted(reasons.items()))}; "
        f"{len(files)} files stored; "
        f"server requests: {len(server.requested)}; wall time {wall:.1f} s"
    )
