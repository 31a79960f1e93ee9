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
from bench.runners import MEMORY_ONLY
from bench.s3 import list_keys, sha256_object, unfinished_uploads

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from bench.corpus import Entry
    from bench.s3 import S3Place

_EXAMPLES = 10
S3_INDEX_FOLDER = ".mediapipe/index/"  # mediapipe.store.s3.INDEX_FOLDER


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

    def digest(record: dict[str, Any]) -> str | None:
        if runner in MEMORY_ONLY:  # nothing stored: the body's hash, taken by the runner
            return record.get("sha256")
        stored = out_dir / record["path"]
        return sha256_file(stored) if stored.is_file() else None

    records = _read_records(records_file)
    stored = _check_records(result, urls, records, manifest, digest)
    if runner == "mediapipe":
        _check_mediapipe_store(out_dir, stored, result)
    if runner == "copyMedia" and out_dir.is_dir():  # it names the files: no stray ones either
        named = {record["path"] for record in records.values()}
        for found in sorted(out_dir.iterdir()):
            if found.name not in named:
                result.problem("leftovers", f"{found.name} in the media folder, of no source")
    return result


def verify_s3(
    runner: str,
    urls: list[str],
    records_file: Path,
    place: S3Place,
    temp_dir: Path,
    manifest: Mapping[str, Entry],
) -> Verification:
    """The same checks for a run that stored into S3: every recorded object is read back from
    the bucket and hashed as it streams. For mediapipe, the index objects under the prefix must
    list exactly those files with the same SHA-256, the local temporary folder must be empty
    and no multipart upload may be left unfinished under the prefix."""
    result = Verification(expected=len(urls))
    client = place.client()

    def digest(record: dict[str, Any]) -> str | None:
        return sha256_object(client, place.bucket, place.prefix + record["path"])

    stored = _check_records(result, urls, _read_records(records_file), manifest, digest)
    if runner == "mediapipe":
        _check_mediapipe_bucket(client, place, stored, result)
        tmp = temp_dir / ".mediapipe" / "tmp"
        if tmp.is_dir():
            for leftover in tmp.iterdir():
                result.problem("leftovers", f"{leftover.name} left in MEDIAPIPE_TEMP_DIR")
    for upload in unfinished_uploads(client, place.bucket, place.prefix):
        result.problem("leftovers", f"unfinished multipart upload of {upload['Key']}")
    return result


def _check_records(
    result: Verification,
    urls: list[str],
    records: dict[str, dict[str, Any]],
    manifest: Mapping[str, Entry],
    digest: Callable[[dict[str, Any]], str | None],
) -> dict[str, str]:
    """Each URL's record must name a stored file whose SHA-256 is its corpus file's; ``digest``
    hashes the stored file a record names (None: not in the store). Returns the stored files'
    digests by path."""
    todo: list[tuple[str, Entry, dict[str, Any]]] = []
    for url in urls:
        entry = manifest[urlsplit(url).path.lstrip("/")]
        record = records.get(url)
        if record is None:
            result.problem("missing", f"{url}: no record")
        elif record["path"] is None or record["status"] == "failed":
            reason = str(record.get("reason"))
            result.reasons[reason] = result.reasons.get(reason, 0) + 1
            result.problem("failed", f"{url}: {reason}")
        else:
            todo.append((url, entry, record))
    with ThreadPoolExecutor(max_workers=2) as pool:
        digests = list(pool.map(lambda job: digest(job[2]), todo))
    stored: dict[str, str] = {}
    for (url, entry, record), found in zip(todo, digests, strict=True):
        if found is None:
            result.problem("missing", f"{url}: {record['path']} is not in the store")
        elif found != entry.sha256:
            result.problem("mismatched", f"{url}: {record['path']} has sha256 {found[:16]}…")
        elif record.get("sha256") not in (None, found):
            result.problem("mismatched", f"{url}: record says {record['sha256'][:16]}…")
        else:
            result.ok += 1
            result.ok_bytes += entry.size
            stored[record["path"]] = found
    return stored


def _check_mediapipe_bucket(
    client: Any, place: S3Place, stored: dict[str, str], result: Verification
) -> None:
    """mediapipe's S3 reuse index: one JSON object per source under ``.mediapipe/index/``."""
    indexed: dict[str, str] = {}
    index_prefix = place.prefix + S3_INDEX_FOLDER
    keys = list_keys(client, place.bucket, index_prefix)

    def read(key: str) -> tuple[str, dict[str, Any] | Exception]:
        try:
            body = client.get_object(Bucket=place.bucket, Key=key)["Body"]
            with body:
                return key, json.loads(body.read())
        except Exception as exc:  # reported, not raised
            return key, exc

    with ThreadPoolExecutor(max_workers=4) as pool:
        for key, entry in pool.map(read, keys):
            if isinstance(entry, Exception):
                result.problem("index_problems", f"{key}: {entry!r}")
                continue
            try:
                indexed[entry["path"]] = entry["sha256"]
            except (KeyError, TypeError) as exc:
                result.problem("index_problems", f"{key}: {exc!r}")
    for path, digest in stored.items():
        if indexed.get(path) != digest:
            result.problem("index_problems", f"{path}: index has {indexed.get(path)}")


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
