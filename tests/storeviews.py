"""One view of a store for tests that run the same body against every kind of store.

A :class:`StoreView` gives what a crawl needs to use the store (its ``MEDIAPIPE_STORE`` value and
extra settings) and what a test checks afterwards: the final files with their bytes, the
Content-Type an object was given, the reuse index, temporary leftovers, and anything written
next to the store rather than in it. :class:`LocalView` is a local folder, :class:`S3View` a
fresh key prefix in the test server's bucket, read with boto3.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from typing import TYPE_CHECKING, Any, Literal, Protocol

from tests.s3server import BUCKET
from tests.storecheck import META, leftovers, stored_files

if TYPE_CHECKING:
    from pathlib import Path

    from tests.s3server import S3Server

INDEX = f"{META}/index/"


class StoreView(Protocol):
    """What a test sees of one store."""

    kind: Literal["local", "s3"]

    @property
    def uri(self) -> str:
        """The ``MEDIAPIPE_STORE`` value (or ``copy_media``'s ``media_dir``) of this store."""

    def settings(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Crawl settings that use this store, with ``extra`` on top."""

    def files(self) -> dict[str, bytes]:
        """Every final file or object by its name relative to the store; no bookkeeping."""

    def content_type(self, name: str) -> str | None:
        """The Content-Type an object was stored with; None where a store keeps none."""

    def index_keys(self) -> list[str]:
        """The source hashes the reuse index holds, sorted."""

    def index_entry(self, key: str) -> dict[str, Any] | None:
        """One entry of the reuse index (path, size, sha256, mime, width, height, stored_at,
        credentials as a bool), or None."""

    def set_index_field(self, key: str, field: str, value: Any) -> None:
        """Rewrite one field of an entry, as time or a damaged store would."""

    def remove(self, name: str) -> None:
        """Delete a stored file behind the index's back."""

    def replace(self, name: str, data: bytes) -> None:
        """Give a stored file new bytes the way a later commit of its own source would (a new
        file or object under the same name)."""

    def leftovers(self) -> list[str]:
        """Temporary files, and for S3 unfinished multipart uploads, still around."""

    def neighbours(self) -> dict[str, bytes]:
        """Files written next to the store, outside it (in the folder or prefix holding it)."""


class LocalView:
    """A local folder ``<base>/media``; ``<base>`` holds nothing else."""

    kind: Literal["local", "s3"] = "local"

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "media"

    @property
    def uri(self) -> str:
        return str(self.root)

    def settings(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"MEDIAPIPE_STORE": self.uri, **(extra or {})}

    def files(self) -> dict[str, bytes]:
        return stored_files(self.root)

    def content_type(self, name: str) -> str | None:
        assert (self.root / name).is_file(), name
        return None

    def _database(self) -> Path:
        return self.root / META / "index.sqlite3"

    def index_keys(self) -> list[str]:
        if not self._database().exists():
            return []
        with contextlib.closing(sqlite3.connect(self._database(), timeout=30)) as db:
            return sorted(key for (key,) in db.execute("SELECT key FROM entries"))

    def index_entry(self, key: str) -> dict[str, Any] | None:
        if not self._database().exists():
            return None
        with contextlib.closing(sqlite3.connect(self._database(), timeout=30)) as db:
            db.row_factory = sqlite3.Row
            row = db.execute("SELECT * FROM entries WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        entry = dict(row)
        del entry["key"]
        entry["credentials"] = bool(entry["credentials"])
        return entry

    def set_index_field(self, key: str, field: str, value: Any) -> None:
        assert field.isidentifier()
        with contextlib.closing(sqlite3.connect(self._database(), timeout=30)) as db:
            changed = db.execute(f"UPDATE entries SET {field} = ? WHERE key = ?", (value, key))
            assert changed.rowcount == 1
            db.commit()

    def remove(self, name: str) -> None:
        (self.root / name).unlink()

    def replace(self, name: str, data: bytes) -> None:
        new = self.root / f"{name}.new"
        new.write_bytes(data)
        os.replace(new, self.root / name)

    def leftovers(self) -> list[str]:
        return sorted(path.name for path in leftovers(self.root))

    def neighbours(self) -> dict[str, bytes]:
        return {
            name: data
            for name, data in stored_files(self.base).items()
            if not name.startswith("media/")
        }


class S3View:
    """The prefix ``<run>/media/`` of the test server's bucket, and a local temporary folder."""

    kind: Literal["local", "s3"] = "s3"

    def __init__(self, server: S3Server, run: str, temp_dir: Path) -> None:
        self.server = server
        self.run = run
        self.prefix = f"{run}/media/"
        self.temp_dir = temp_dir
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self.server.client()
        return self._client

    @property
    def uri(self) -> str:
        return f"s3://{BUCKET}/{self.prefix}"

    def settings(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            **self.server.settings(),
            "MEDIAPIPE_STORE": self.uri,
            "MEDIAPIPE_TEMP_DIR": str(self.temp_dir),
            **(extra or {}),
        }

    def _keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, Prefix=prefix
        ):
            keys.extend(entry["Key"] for entry in page.get("Contents", []))
        return sorted(keys)

    def _get(self, key: str) -> bytes:
        data: bytes = self.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        return data

    def files(self) -> dict[str, bytes]:
        names = [key[len(self.prefix) :] for key in self._keys(self.prefix)]
        return {
            name: self._get(self.prefix + name) for name in names if META not in name.split("/")
        }

    def content_type(self, name: str) -> str | None:
        head = self.client.head_object(Bucket=BUCKET, Key=self.prefix + name)
        value: str = head["ContentType"]
        return value

    def index_keys(self) -> list[str]:
        folder = self.prefix + INDEX
        return sorted(key[len(folder) :].removesuffix(".json") for key in self._keys(folder))

    def index_entry(self, key: str) -> dict[str, Any] | None:
        if key not in self.index_keys():
            return None
        entry: dict[str, Any] = json.loads(self._get(f"{self.prefix}{INDEX}{key}.json"))
        return entry

    def set_index_field(self, key: str, field: str, value: Any) -> None:
        entry = self.index_entry(key)
        assert entry is not None
        assert field in entry
        self.client.put_object(
            Bucket=BUCKET,
            Key=f"{self.prefix}{INDEX}{key}.json",
            Body=json.dumps({**entry, field: value}, ensure_ascii=False).encode(),
            ContentType="application/json",
        )

    def remove(self, name: str) -> None:
        self.client.delete_object(Bucket=BUCKET, Key=self.prefix + name)

    def replace(self, name: str, data: bytes) -> None:
        self.client.put_object(Bucket=BUCKET, Key=self.prefix + name, Body=data)

    def leftovers(self) -> list[str]:
        tmp = self.temp_dir / META / "tmp"
        local = sorted(path.name for path in tmp.iterdir()) if tmp.exists() else []
        uploads = self.client.list_multipart_uploads(Bucket=BUCKET, Prefix=self.prefix)
        return local + sorted(f"upload:{entry['Key']}" for entry in uploads.get("Uploads", []))

    def neighbours(self) -> dict[str, bytes]:
        base = f"{self.run}/"
        outside = [key for key in self._keys(base) if not key.startswith(self.prefix)]
        return {key[len(base) :]: self._get(key) for key in outside}
