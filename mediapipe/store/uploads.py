"""The journal of this machine's unfinished multipart uploads to a bucket.

A crawl killed in the middle of a multipart upload leaves the upload behind, invisible and
billed. Several crawls may share a prefix, so a start must not abort every unfinished upload
there: the journal tells those of processes that died on this machine from those still running.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from mediapipe.store.processes import (
    RUN_TAG,
    boot_id,
    host_identity,
    owner_may_run,
    owner_tag,
    pid_alive,
    start_time,
)
from mediapipe.store.protocol import StorageError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

logger = logging.getLogger(__name__)


class MultipartUploads:
    """The multipart uploads of one store: journaled as they open and end, and those that will
    never end aborted at start."""

    def __init__(
        self, client: Any, bucket: str, prefix: str, uri: str, journal: UploadJournal
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.uri = uri
        self.journal = journal

    def abort_stale(self, stale_hours: float) -> None:
        # A killed crawl leaves its unfinished multipart uploads behind, billed and invisible. Other
        # crawls may be uploading under the same prefix right now: an upload is aborted only when
        # its process is known to be dead (from this machine's journal) or, known to no journal
        # here, when it is too old to be anyone's upload in progress.
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            live = self._abort_uploads_of_dead_processes()
            self._abort_old_uploads(live, stale_hours)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(
                f"cannot list or abort unfinished uploads in {self.uri}: {exc}"
            ) from exc

    def _abort_uploads_of_dead_processes(self) -> set[str]:
        """Abort the journaled uploads of this store whose process ended; return the upload ids
        of those whose process may still run."""
        live: set[str] = set()
        aborted = 0
        for entry in self.journal.entries():
            if not entry.key.startswith(self.prefix):
                continue  # another store's, with its own prefix, sweeps it
            ended = entry.owner.has_ended()
            if ended is None:
                continue  # written on another machine: its pid means nothing here
            if not ended:
                live.add(entry.upload_id)
                continue
            self._abort_upload(entry.key, entry.upload_id)
            self.journal.remove(entry)
            aborted += 1
        if aborted:
            logger.info("Aborted %d unfinished uploads of ended crawls in %s", aborted, self.uri)
        return live

    def _abort_old_uploads(self, keep: set[str], stale_hours: float) -> None:
        cutoff = time.time() - stale_hours * 3600
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        aborted = 0
        for page in pages:
            for upload in page.get("Uploads", []):
                if upload["UploadId"] in keep or upload["Initiated"].timestamp() > cutoff:
                    continue
                self._abort_upload(upload["Key"], upload["UploadId"])
                aborted += 1
        if aborted:
            logger.info(
                "Aborted %d unfinished uploads older than %g hours in %s",
                aborted,
                stale_hours,
                self.uri,
            )

    def _abort_upload(self, key: str, upload_id: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            # Completed or aborted meanwhile, maybe by another crawl sweeping the same prefix.
            if not _no_such_upload(exc.response):
                raise

    def watch(self) -> None:
        events = self.client.meta.events
        for operation in _UPLOAD_OPERATIONS:
            events.register(f"before-parameter-build.s3.{operation}", _keep_upload_params)
        events.register("after-call.s3.CreateMultipartUpload", self._upload_created)
        events.register("after-call.s3.CompleteMultipartUpload", self._upload_ended)
        events.register("after-call.s3.AbortMultipartUpload", self._upload_ended)

    def _upload_created(
        self, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        # Runs before the call returns the upload id to s3transfer, so before any part is sent.
        if http_response.status_code >= 300:
            return
        key, upload_id = context[_PARAMS]["Key"], parsed["UploadId"]
        try:
            self.journal.record(key, upload_id)
        except OSError as exc:
            # An upload no journal knows would outlive a kill of this crawl until it is old:
            # it does not go ahead, and the file fails as a storage failure that says why.
            with contextlib.suppress(Exception):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            name = key.removeprefix(self.prefix)
            raise StorageError(
                exc.errno,
                f"cannot store {name} in {self.uri}: cannot record its multipart upload in "
                f"{self.journal.folder} (MEDIAPIPE_TEMP_DIR): {exc.strerror}",
            ) from exc

    def _upload_ended(
        self, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        if http_response.status_code < 300 or _no_such_upload(parsed):
            self.journal.forget(context[_PARAMS]["UploadId"])


_PARAMS = "mediapipe_upload_params"
_UPLOAD_OPERATIONS = ("CreateMultipartUpload", "CompleteMultipartUpload", "AbortMultipartUpload")


def _keep_upload_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    # An after-call handler sees the response, not the request: Complete and Abort answer
    # without the upload id.
    context[_PARAMS] = {"Key": params.get("Key"), "UploadId": params.get("UploadId")}


def _no_such_upload(response: dict[str, Any]) -> bool:
    return response.get("Error", {}).get("Code") in {"NoSuchUpload", "404"}


@dataclass(frozen=True, slots=True)
class Owner:
    """The process that opened an upload: a pid means a process only on its machine, within its
    pid namespace and boot, and a pid is reused, so the start time and run tag tell the process
    from a later one with the same pid."""

    host: str
    boot: str
    pid: int
    run: str
    started: str | None

    @classmethod
    def this_process(cls) -> Owner:
        pid = os.getpid()
        return cls(host_identity(), boot_id(), pid, RUN_TAG, start_time(pid))

    def has_ended(self) -> bool | None:
        """True if the process is gone, False if it may still run, None if it ran on another
        machine (or in another pid namespace), where this one cannot tell."""
        if self.host != host_identity():
            return None
        if self.boot and self.boot != boot_id():
            return True
        if self.pid == os.getpid():
            return self.run != RUN_TAG
        if not pid_alive(self.pid):
            return True
        now = start_time(self.pid)
        return self.started is not None and now is not None and now != self.started


@dataclass(frozen=True, slots=True)
class JournalEntry:
    path: Path
    endpoint: str
    bucket: str
    key: str
    upload_id: str
    owner: Owner


class UploadJournal:
    """This process's unfinished multipart uploads, one small JSON file each, so that the next
    start on this machine can abort those of a process that died, and keep those of live ones.

    An entry is written (whole, by a rename) when S3 returned the upload id, before any part is
    sent, and removed once the upload is completed or aborted.
    """

    def __init__(self, folder: Path, *, endpoint: str, bucket: str) -> None:
        self.folder = folder
        self._endpoint = endpoint
        self._bucket = bucket
        self._owner = Owner.this_process()

    def open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._sweep_partial_writes()

    def record(self, key: str, upload_id: str) -> None:
        entry = {
            "endpoint": self._endpoint,
            "bucket": self._bucket,
            "key": key,
            "upload_id": upload_id,
            "owner": asdict(self._owner),
        }
        path = self._own_path(upload_id)
        partial = path.with_name(path.name + ".part")
        try:
            with partial.open("x", encoding="utf-8") as handle:
                json.dump(entry, handle)
            os.replace(partial, path)
        except OSError:
            with contextlib.suppress(OSError):
                partial.unlink()
            raise

    def forget(self, upload_id: str) -> None:
        # A left entry only makes a later start abort an upload that no longer exists.
        with contextlib.suppress(OSError):
            self._own_path(upload_id).unlink()

    def remove(self, entry: JournalEntry) -> None:
        # Its upload is gone: a left entry only makes a later start try a harmless abort again.
        with contextlib.suppress(OSError):
            entry.path.unlink()

    def entries(self) -> Iterator[JournalEntry]:
        """The entries of uploads to this endpoint and bucket, by any process."""
        for path in sorted(self.folder.glob("*.json")):
            entry = self._read(path)
            if entry is not None and (entry.endpoint, entry.bucket) == (
                self._endpoint,
                self._bucket,
            ):
                yield entry

    def _own_path(self, upload_id: str) -> Path:
        digest = hashlib.sha256(upload_id.encode("utf-8")).hexdigest()[:16]
        return self.folder / f"{owner_tag()}-{digest}.json"

    def _read(self, path: Path) -> JournalEntry | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            owner = Owner(**data["owner"])
            entry = JournalEntry(
                path, data["endpoint"], data["bucket"], data["key"], data["upload_id"], owner
            )
            if not all(isinstance(v, str) for v in (entry.key, entry.upload_id)) or (
                isinstance(owner.pid, bool) or not isinstance(owner.pid, int) or owner.pid <= 0
            ):
                raise ValueError(path)
        except FileNotFoundError:
            return None  # its upload ended meanwhile
        except (OSError, ValueError, TypeError, KeyError):
            # Never half-written (entries appear by a rename): damaged, and naming no upload
            # that could be aborted.
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        return entry

    def _sweep_partial_writes(self) -> None:
        # A process killed while writing an entry leaves its ".part"; the rename never came.
        now = time.time()
        for path in self.folder.glob("*.part"):
            with contextlib.suppress(OSError):
                if not owner_may_run(path.name, now - path.stat().st_mtime):
                    path.unlink()
