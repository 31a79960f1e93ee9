"""The S3-compatible object store: ``MEDIAPIPE_STORE = "s3://bucket/prefix/"``.

Bodies stream to a local temporary file as with the local store; a validated file is uploaded
by the worker thread that commits it, and appears under its final key only complete (a PUT or a
completed multipart upload is atomic). The reuse index is one small JSON object per source in
the bucket, written after the upload succeeded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mediapipe.settings import SettingError
from mediapipe.store.index import StoredFile
from mediapipe.store.local import _RUN_TAG, FilesystemStore, _pid_alive
from mediapipe.store.protocol import StorageError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from scrapy.settings import BaseSettings

    from mediapipe.settings import MediaConfig
    from mediapipe.store.temp import TempFile

INSTALL_HINT = "pip install 'scrapy-mediapipe[s3]'"
INDEX_FOLDER = ".mediapipe/index/"
DEFAULT_CONTENT_TYPE = "application/octet-stream"
# Above this size a file goes up in parts, so that a failed part is retried alone.
MULTIPART_THRESHOLD = 16 * 1024 * 1024
MULTIPART_CHUNK = 16 * 1024 * 1024
# An unfinished multipart upload that no journal on this machine vouches for (another machine's,
# or one whose journal entry was never written) is aborted at start once it was initiated this
# many hours ago. It must exceed the longest upload of one file by any crawl on the prefix.
STALE_UPLOAD_HOURS = 24.0
# Under MEDIAPIPE_TEMP_DIR: one JSON file per multipart upload this machine's crawls have open.
UPLOADS_FOLDER = ".mediapipe/uploads"

logger = logging.getLogger(__name__)


def default_temp_dir() -> Path:
    return Path(tempfile.gettempdir()) / "mediapipe-tmp"


def split_uri(uri: str) -> tuple[str, str]:
    """The bucket and the key prefix ("" or ending in "/") of an ``s3://`` URI."""
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc:
        raise SettingError(f"MEDIAPIPE_STORE = {uri!r}: an S3 store is s3://bucket/prefix/")
    prefix = parts.path.strip("/")
    return parts.netloc, prefix + "/" if prefix else ""


class S3Store:
    """Media files as objects under one key prefix of a bucket."""

    def __init__(
        self,
        uri: str,
        *,
        temp_dir: Path,
        client_options: dict[str, Any],
        fsync: bool = False,
    ) -> None:
        self.uri = uri
        self.bucket, self.prefix = split_uri(uri)
        # Temporary files live in a local folder whose sweep is the local store's.
        self._local = FilesystemStore(temp_dir, fsync=fsync)
        # The protocol's local root: here, the only local folder this store writes to.
        self.root = temp_dir
        self._client_options = client_options
        self._client: Any = None
        self._transfer: Any = None

    @classmethod
    def from_config(cls, config: MediaConfig, settings: BaseSettings) -> S3Store:
        temp_dir = settings.get("MEDIAPIPE_TEMP_DIR") or default_temp_dir()
        if not isinstance(temp_dir, str | os.PathLike):
            raise SettingError(f"MEDIAPIPE_TEMP_DIR must be a folder path, got {temp_dir!r}")
        use_ssl = settings.get("AWS_USE_SSL")
        verify = settings.get("AWS_VERIFY")
        options = {
            "aws_access_key_id": settings.get("AWS_ACCESS_KEY_ID"),
            "aws_secret_access_key": settings.get("AWS_SECRET_ACCESS_KEY"),
            "aws_session_token": settings.get("AWS_SESSION_TOKEN"),
            "endpoint_url": settings.get("AWS_ENDPOINT_URL"),
            "region_name": settings.get("AWS_REGION_NAME"),
            "use_ssl": True if use_ssl is None else settings.getbool("AWS_USE_SSL"),
            "verify": verify,
        }
        return cls(
            str(config.store), temp_dir=Path(temp_dir), client_options=options, fsync=config.fsync
        )

    # -- MediaStore ------------------------------------------------------------------------

    def open(self) -> None:
        try:
            import boto3
            from boto3.s3.transfer import TransferConfig
            from botocore.config import Config
        except ImportError as exc:
            raise StorageError(f"an s3:// store needs boto3: {INSTALL_HINT}") from exc
        try:
            self._local.open()
        except StorageError as exc:
            raise StorageError(exc.errno, f"MEDIAPIPE_TEMP_DIR: {exc.strerror}") from exc
        options = dict(self._client_options)
        session = boto3.session.Session(
            aws_access_key_id=options.pop("aws_access_key_id"),
            aws_secret_access_key=options.pop("aws_secret_access_key"),
            aws_session_token=options.pop("aws_session_token"),
            region_name=options.pop("region_name"),
        )
        # Few, quick retries: a store that does not answer must fail the crawl at start, not
        # after minutes of back-off.
        config = Config(connect_timeout=10, retries={"max_attempts": 3, "mode": "standard"})
        self._client = session.client("s3", config=config, **options)
        self._journal = UploadJournal(
            self.root / UPLOADS_FOLDER, endpoint=self._client.meta.endpoint_url, bucket=self.bucket
        )
        try:
            self._journal.open()
        except OSError as exc:
            raise StorageError(
                exc.errno, f"MEDIAPIPE_TEMP_DIR: cannot create {exc.filename}: {exc.strerror}"
            ) from exc
        self._watch_uploads()
        # One upload per worker thread at a time: the writer threads are the concurrency.
        self._transfer = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD,
            multipart_chunksize=MULTIPART_CHUNK,
            use_threads=False,
        )
        self._check_bucket()
        self._abort_stale_uploads()

    def new_temp(self) -> TempFile:
        return self._local.new_temp()

    def close(self) -> None:
        self._local.close()
        if self._client is not None:
            self._client.close()

    def lookup(self, key: str, max_age_days: float) -> StoredFile | None:
        if max_age_days <= 0:
            return None
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            body = self._client.get_object(Bucket=self.bucket, Key=self._index_key(key))["Body"]
            with body:
                record = StoredFile(**json.loads(body.read()))
            if time.time() - record.stored_at > max_age_days * 86400:
                return None
            head = self._client.head_object(Bucket=self.bucket, Key=self.object_key(record.path))
        except (BotoCoreError, ClientError, ValueError, TypeError):
            return None
        if head["ContentLength"] != record.size:
            return None
        return record

    def commit(
        self,
        temp: TempFile,
        name: str,
        key: str,
        *,
        mime: str | None,
        width: int | None,
        height: int | None,
        credentials: bool,
    ) -> StoredFile:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            temp.close()
            object_key = self.object_key(name)
            record = StoredFile(
                path=name.replace("\\", "/"),
                size=temp.size,
                sha256=temp.sha256,
                mime=mime,
                width=width,
                height=height,
                stored_at=time.time(),
                credentials=credentials,
            )
            self._client.upload_file(
                os.fspath(temp.path),
                self.bucket,
                object_key,
                ExtraArgs={"ContentType": mime or DEFAULT_CONTENT_TYPE},
                Config=self._transfer,
            )
            # Only after the upload: an index object always names a complete file.
            self._client.put_object(
                Bucket=self.bucket,
                Key=self._index_key(key),
                Body=json.dumps(asdict(record), ensure_ascii=False).encode("utf-8"),
                ContentType="application/json",
            )
        except (BotoCoreError, ClientError, Boto3Error) as exc:
            # A failed upload's own message names the local temporary file: the server's says why.
            cause = exc.__context__ if isinstance(exc.__context__, ClientError) else exc
            raise StorageError(f"cannot store {name} in {self.uri}: {cause}") from exc
        finally:
            temp.discard()
        return record

    # -- helpers ---------------------------------------------------------------------------

    def object_key(self, name: str) -> str:
        """The key of ``name``, refusing names that would leave the prefix or hit the index."""
        parts = name.replace("\\", "/").split("/")
        if any(part in {"", ".", ".."} for part in parts) or parts[0] == ".mediapipe":
            raise StorageError(f"file name {name!r} would leave the media store")
        return self.prefix + "/".join(parts)

    def _index_key(self, key: str) -> str:
        return f"{self.prefix}{INDEX_FOLDER}{key}.json"

    def _check_bucket(self) -> None:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
        )

        endpoint = self._client.meta.endpoint_url
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except NoCredentialsError as exc:
            raise StorageError(
                "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            ) from exc
        except EndpointConnectionError as exc:
            raise StorageError(
                f"cannot reach the S3 endpoint {endpoint} (AWS_ENDPOINT_URL): {exc}"
            ) from exc
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = exc.response.get("Error", {}).get("Code")
            if status == 404 or code in {"404", "NoSuchBucket"}:
                message = f"the bucket {self.bucket!r} does not exist at {endpoint}"
            elif status == 403 or code in {"403", "AccessDenied", "InvalidAccessKeyId"}:
                message = (
                    f"access to the bucket {self.bucket!r} at {endpoint} was denied: check "
                    "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN"
                )
            else:
                message = f"the bucket {self.bucket!r} at {endpoint} cannot be used: {exc}"
            raise StorageError(message) from exc
        except BotoCoreError as exc:
            raise StorageError(f"the S3 endpoint {endpoint} cannot be used: {exc}") from exc

    def _abort_stale_uploads(self) -> None:
        # A killed crawl leaves its unfinished multipart uploads behind, billed and invisible. Other
        # crawls may be uploading under the same prefix right now: an upload is aborted only when
        # its process is known to be dead (from this machine's journal) or, known to no journal
        # here, when it is too old to be anyone's upload in progress.
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            live = self._abort_uploads_of_dead_processes()
            self._abort_old_uploads(keep=live)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(
                f"cannot list or abort unfinished uploads in {self.uri}: {exc}"
            ) from exc

    def _abort_uploads_of_dead_processes(self) -> set[str]:
        """Abort the journaled uploads of this store whose process ended; return the upload ids
        of those whose process may still run."""
        live: set[str] = set()
        aborted = 0
        for entry in self._journal.entries():
            if not entry.key.startswith(self.prefix):
                continue  # another store's, with its own prefix, sweeps it
            ended = entry.owner.has_ended()
            if ended is None:
                continue  # written on another machine: its pid means nothing here
            if not ended:
                live.add(entry.upload_id)
                continue
            self._abort_upload(entry.key, entry.upload_id)
            self._journal.remove(entry)
            aborted += 1
        if aborted:
            logger.info("Aborted %d unfinished uploads of ended crawls in %s", aborted, self.uri)
        return live

    def _abort_old_uploads(self, keep: set[str]) -> None:
        cutoff = time.time() - STALE_UPLOAD_HOURS * 3600
        pages = self._client.get_paginator("list_multipart_uploads").paginate(
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
                STALE_UPLOAD_HOURS,
                self.uri,
            )

    def _abort_upload(self, key: str, upload_id: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            # Completed or aborted meanwhile, maybe by another crawl sweeping the same prefix.
            if not _no_such_upload(exc.response):
                raise

    # -- the journal of this process's open multipart uploads ------------------------------

    def _watch_uploads(self) -> None:
        events = self._client.meta.events
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
            self._journal.record(key, upload_id)
        except OSError as exc:
            # An upload no journal knows would outlive a kill of this crawl until it is old:
            # it does not go ahead, and the file fails as a storage failure that says why.
            with contextlib.suppress(Exception):
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            name = key.removeprefix(self.prefix)
            raise StorageError(
                exc.errno,
                f"cannot store {name} in {self.uri}: cannot record its multipart upload in "
                f"{self._journal.folder} (MEDIAPIPE_TEMP_DIR): {exc.strerror}",
            ) from exc

    def _upload_ended(
        self, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        if http_response.status_code < 300 or _no_such_upload(parsed):
            self._journal.forget(context[_PARAMS]["UploadId"])


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
        return cls(_host(), _boot_id(), pid, _RUN_TAG, _start_time(pid))

    def has_ended(self) -> bool | None:
        """True if the process is gone, False if it may still run, None if it ran on another
        machine (or in another pid namespace), where this one cannot tell."""
        if self.host != _host():
            return None
        if self.boot and self.boot != _boot_id():
            return True
        if self.pid == os.getpid():
            return self.run != _RUN_TAG
        if not _pid_alive(self.pid):
            return True
        now = _start_time(self.pid)
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
        return self.folder / f"{self._owner.pid}-{self._owner.run}-{digest}.json"

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
        for path in self.folder.glob("*.part"):
            if not _writer_may_run(path.name):
                with contextlib.suppress(OSError):
                    path.unlink()


def _writer_may_run(name: str) -> bool:
    """Whether the process named by a ``<pid>-<run tag>-...`` file name may still run (the rule
    of the local store's sweep of temporary files)."""
    pid, _, rest = name.partition("-")
    if not pid.isdigit() or int(pid) <= 0 or not _pid_alive(int(pid)):
        return False
    return int(pid) != os.getpid() or rest.startswith(f"{_RUN_TAG}-")


def _host() -> str:
    # Containers may share a temporary folder and a host name but not their pids.
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return f"{socket.gethostname()} {namespace}".strip()


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> str | None:
    """When the process started, in clock ticks since boot (Linux); None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name, in parentheses, may hold spaces: fields are counted after it.
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None
