"""After every run: each stored file's SHA-256 must be the SHA-256 of its corpus file."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bench.corpus import sha256_file

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from bench.corpus import Entry

_EXAMPLES = 10


@dataclass(slots=True)
class Verification:
    expected: int = 0
    ok: int = 0
    ok_bytes: int = 0
    failed: int = 0  # the runner reported the source as not stored
    missing: int = 0  # no record, or the recorded file is not there
    mismatched: int = 0  # stored bytes differ from the corpus file
    index_problems: int = 0  # mediapipe: index entries missing or disagreeing
    leftovers: int = 0  # mediapipe: files left in the store's tmp folder
    reasons: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return (
            self.ok == self.expected
            and not (self.failed or self.missing or self.mismatched)
            and not (self.index_problems or self.leftovers)
        )

    def problem(self, kind: str, text: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        if len(self.examples) < _EXAMPLES:
            self.examples.append(f"{kind}: {text}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"passed": self.passed}


def _read_records(path: Path) -> dict[str, dict[str, Any]]:
    records: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return records
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                record = json.loads(line)
                records[record["url"]] = record
    return records


def verify(
    runner: str,
    urls: list[str],
    records_file: Path,
    out_dir: Path,
    manifest: Mapping[str, Entry],
) -> Verification:
    result = Verification(expected=len(urls))
    records = _read_records(records_file)
    todo: list[tuple[str, Path, Entry, dict[str, Any]]] = []
    for url in urls:
        entry = manifest[urlsplit(url).path.lstrip("/")]
        record = records.get(url)
        if record is None:
            result.problem("missing", f"{url}: no record")
        elif record["path"] is None or record["status"] == "failed":
            reason = str(record.get("reason"))
            result.reasons[reason] = result.reasons.get(reason, 0) + 1
            result.problem("failed", f"{url}: {reason}")
        elif not (out_dir / record["path"]).is_file():
            result.problem("missing", f"{url}: {record['path']} is not in the store")
        else:
            todo.append((url, out_dir / record["path"], entry, record))
    with ThreadPoolExecutor(max_workers=2) as pool:
        digests = list(pool.map(lambda job: sha256_file(job[1]), todo))
    stored: dict[str, str] = {}
    for (url, path, entry, record), digest in zip(todo, digests, strict=True):
        if digest != entry.sha256:
            result.problem("mismatched", f"{url}: {path.name} has sha256 {digest[:16]}…")
        elif record.get("sha256") not in (None, digest):
            result.problem("mismatched", f"{url}: record says {record['sha256'][:16]}…")
        else:
            result.ok += 1
            result.ok_bytes += entry.size
            stored[record["path"]] = digest
    if runner == "mediapipe":
        _check_mediapipe_store(out_dir, stored, result)
    return result


def _check_mediapipe_store(out_dir: Path, stored: dict[str, str], result: Verification) -> None:
    """The store's index must list exactly the stored files, and no temporary file may be left
    behind. The index is ``.mediapipe/index.sqlite3``, or one JSON file per source under
    ``.mediapipe/index/`` for a store written by 0.1."""
    indexed: dict[str, str] = {}
    for index_file in (out_dir / ".mediapipe" / "index").glob("*/*.json"):
        try:
            entry = json.loads(index_file.read_text("utf-8"))
            indexed[entry["path"]] = entry["sha256"]
        except (OSError, ValueError, KeyError) as exc:
            result.problem("index_problems", f"{index_file.name}: {exc}")
    database = out_dir / ".mediapipe" / "index.sqlite3"
    if database.exists():
        try:
            with contextlib.closing(sqlite3.connect(database, timeout=30)) as connection:
                indexed.update(connection.execute("SELECT path, sha256 FROM entries"))
        except sqlite3.Error as exc:
            result.problem("index_problems", f"{database.name}: {exc}")
    for path, digest in stored.items():
        if indexed.get(path) != digest:
            result.problem("index_problems", f"{path}: index has {indexed.get(path)}")
    tmp = out_dir / ".mediapipe" / "tmp"
    if tmp.is_dir():
        for leftover in tmp.iterdir():
            result.problem("leftovers", f"{leftover.name} left in .mediapipe/tmp")
