"""The ``mediapipe/...`` stats of a crawl and the summary line made from them."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scrapy.statscollectors import StatsCollector

    from mediapipe.records import MediaRecord
    from mediapipe.store.files import StoredFile

PREFIX = "mediapipe/"


class MediaStats:
    """Counts into Scrapy's stats collector, and keeps its own copy for the summary."""

    def __init__(self, collector: StatsCollector | None) -> None:
        self._collector = collector
        self.counts: Counter[str] = Counter()

    def inc(self, name: str, count: int = 1) -> None:
        self.counts[name] += count
        if self._collector is not None:
            self._collector.inc_value(PREFIX + name, count)

    def source_done(self, record: MediaRecord) -> None:
        self.inc("sources")
        self.inc(f"status/{record.status}")
        if record.reason is not None:
            self.inc(f"failed/{record.reason}")

    def file_stored(self, stored: StoredFile) -> None:
        if stored.deduplicated:
            self.inc("deduplicated")
            return
        self.inc("stored_files")
        self.inc("stored_bytes", stored.size)

    def summary(self) -> str:
        """The one-line summary logged when the crawl ends."""
        counts = self.counts
        reasons = sorted(
            (name.split("/", 1)[1], count)
            for name, count in counts.items()
            if name.startswith("failed/")
        )
        failed = ", ".join(f"{reason}: {count}" for reason, count in reasons)
        return (
            f"mediapipe: {counts['sources']} sources in {counts['items']} items: "
            f"{counts['status/downloaded']} downloaded, {counts['status/data']} from data URIs, "
            f"{counts['status/uptodate']} reused, {counts['status/local']} local, "
            f"{counts['status/failed']} failed"
            + (f" ({failed})" if failed else "")
            + f"; {counts['stored_files']} files, {counts['stored_bytes']} bytes written"
            + (f", {counts['deduplicated']} deduplicated" if counts["deduplicated"] else "")
            + (f", {counts['revalidated']} revalidated" if counts["revalidated"] else "")
        )
