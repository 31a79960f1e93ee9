"""The S3-compatible object store: ``MEDIAPIPE_STORE = "s3://bucket/prefix/"``.

Bodies stream to a local temporary file as with the local store; a validated file is uploaded
by the worker thread that commits it, and appears under its final key only complete (a PUT or a
completed multipart upload is atomic). The reuse index is one small JSON object per source in
the bucket, written after the upload succeeded.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mediapipe.settings import SettingError
from mediapipe.store.files import StoredFile, entry_from
from mediapipe.store.local import META_DIR
from mediapipe.store.protocol import StorageError
from mediapipe.store.temp import TempFolder
from mediapipe.store.uploads import MultipartUploads, UploadJournal

if TYPE_CHECKING:
    from collections.abc import Iterator

    from scrapy.settings import BaseSettings

    from mediapipe.settings import MediaConfig
    from mediapipe.store.files import FileFacts
    from mediapipe.store.temp import TempFile

INSTALL_HINT = "pip install 'scrapy-mediapipe[s3]'"
INDEX_FOLDER = ".mediapipe/index/"
# SHA-256 → the object holding those bytes, for deduplication.
CONTENT_FOLDER = ".mediapipe/content/"
DEFAULT_CONTENT_TYPE = "application/octet-stream"
# Above this size a file goes up in parts, so that a failed part is retried alone.
MULTIPART_THRESHOLD = 16 * 1024 * 1024
MULTIPART_CHUNK = 16 * 1024 * 1024
# Reading a stored object back (to make its thumbnails): bytes per read.
COPY_CHUNK = 1024 * 1024
# An unfinished multipart upload that no journal on this machine vouches for (another machine's,
# or one whose journal entry was never written) is aborted at start once it was initiated this
# many hours ago. It must exceed the longest upload of one file by any crawl on the prefix.
STALE_UPLOAD_HOURS = 24.0
# Under MEDIAPIPE_TEMP_DIR: one JSON file per multipart upload this machine's crawls have open.
UPLOADS_FOLDER = ".mediapipe/uploads"


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

    # Uploads and lookups wait on the network, not on a disk: more threads than a local
    # store's keep the downloads going while requests to the bucket are in flight.
    writer_threads = 8
    lookup_threads = 8
    # A commit is several requests: downloads do not wait for it (mediapipe.downloads).
    commit_waits_on_network = True

    def __init__(
        self,
        uri: str,
        *,
        temp_dir: Path,
        client_options: dict[str, Any],
        fsync: bool = False,
        deduplicate: bool = True,
        writer_threads: int | None = None,
    ) -> None:
        self.uri = uri
        if writer_threads is not None:
            self.writer_threads = writer_threads
        self._deduplicate = deduplicate
        self.bucket, self.prefix = split_uri(uri)
        # Bodies are spooled locally first: the temporary folder is the local store's kind.
        self._temps = TempFolder(temp_dir / META_DIR / "tmp", fsync=fsync)
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
            str(config.store),
            temp_dir=Path(temp_dir),
            client_options=options,
            fsync=config.fsync,
            deduplicate=config.deduplicate,
            writer_threads=config.writer_threads,
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
            self._temps.prepare()
        except OSError as exc:
            raise StorageError(
                exc.errno, f"MEDIAPIPE_TEMP_DIR: cannot create or write {self.root}: {exc.strerror}"
            ) from exc
        self._temps.sweep()
        options = dict(self._client_options)
        session = boto3.session.Session(
            aws_access_key_id=options.pop("aws_access_key_id"),
            aws_secret_access_key=options.pop("aws_secret_access_key"),
            aws_session_token=options.pop("aws_session_token"),
            region_name=options.pop("region_name"),
        )
        # Few, quick retries: a store that does not answer must fail the crawl at start, not
        # after minutes of back-off.
        # Every writer and lookup thread may hold a connection at once (botocore keeps 10).
        config = Config(
            connect_timeout=10,
            retries={"max_attempts": 3, "mode": "standard"},
            max_pool_connections=self.writer_threads + self.lookup_threads + 2,
            # No extra checksum of every body (measured: 0.7 ms of CPU per 50 kB PUT): over HTTPS
            # TLS guards the bytes, over plain HTTP the signature covers the payload's SHA-256.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
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
        self._uploads = MultipartUploads(
            self._client, self.bucket, self.prefix, self.uri, self._journal
        )
        self._uploads.watch()
        # One upload per worker thread at a time: the writer threads are the concurrency.
        self._transfer = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD,
            multipart_chunksize=MULTIPART_CHUNK,
            use_threads=False,
        )
        self._check_bucket()
        self._uploads.abort_stale(STALE_UPLOAD_HOURS)

    def new_temp(self) -> TempFile:
        return self._temps.new_temp()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    # -- DerivativeStore -------------------------------------------------------------------

    @contextlib.contextmanager
    def stored_copy(self, path: str) -> Iterator[Path]:
        temp = self._temps.new_temp()
        try:
            with self._storage_errors(f"cannot read {path} from {self.uri}"):
                body = self._client.get_object(Bucket=self.bucket, Key=self.object_key(path))[
                    "Body"
                ]
                with body:
                    for chunk in body.iter_chunks(COPY_CHUNK):
                        temp.write(chunk)
            temp.close()
            yield temp.path
        finally:
            temp.discard()

    def derivative_size(self, path: str) -> tuple[int, int] | None:
        from botocore.exceptions import ClientError

        with self._storage_errors(f"cannot look up {path} in {self.uri}"):
            try:
                head = self._client.head_object(Bucket=self.bucket, Key=self.object_key(path))
            except ClientError as exc:
                if _missing(exc):
                    return None
                raise
        metadata = head.get("Metadata") or {}
        try:
            width, height = int(metadata["width"]), int(metadata["height"])
        except (KeyError, TypeError, ValueError):
            return None  # not one this store wrote: made again
        return (width, height) if head.get("ContentLength") else None

    def put_derivative(self, path: str, data: bytes, mime: str, size: tuple[int, int]) -> None:
        with self._storage_errors(f"cannot store {path} in {self.uri}"):
            self._client.put_object(
                Bucket=self.bucket,
                Key=self.object_key(path),
                Body=data,
                ContentType=mime,
                # Its pixel size, for a later run that finds it: no download to measure it.
                Metadata={"width": str(size[0]), "height": str(size[1])},
            )

    def lookup(self, key: str) -> StoredFile | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            record = self._read_entry(self._index_key(key))
            if record is None:
                return None
            try:
                object_key = self.object_key(record.path)
            except StorageError:
                return None  # an entry no commit of ours wrote: not trusted
            head = self._client.head_object(Bucket=self.bucket, Key=object_key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise StorageError(f"cannot look up a source in {self.uri}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"cannot look up a source in {self.uri}: {exc}") from exc
        if head["ContentLength"] != record.size:
            return None
        if record.version is not None and head.get("ETag") != record.version:
            return None  # the object this entry shares was replaced since
        return record

    def refresh(self, key: str, stored: StoredFile) -> StoredFile:
        fresh = stored.refreshed(time.time())
        with self._storage_errors(f"cannot refresh {stored.path} in {self.uri}"):
            self._write_json(self._index_key(key), fresh.kept())
        return fresh

    def commit(
        self,
        temp: TempFile,
        name: str,
        key: str,
        facts: FileFacts,
        *,
        may_share: bool = True,
    ) -> StoredFile:
        try:
            with self._storage_errors(f"cannot store {name} in {self.uri}"):
                temp.close()
                object_key = self.object_key(name)
                record = facts.stored(name, temp.size, temp.sha256, time.time())
                shared = self._same_bytes(record) if self._deduplicate and may_share else None
                if shared is not None:
                    record = replace(
                        record,
                        path=shared.path,
                        version=shared.version,
                        deduplicated=shared.path != record.path,
                    )
                else:
                    version = self._upload(temp, object_key, facts.mime)
                    record = replace(record, version=version)
                # Only after the upload: an index object always names a complete file.
                self._write_json(self._index_key(key), record.kept())
                if self._deduplicate and may_share and shared is None:
                    self._write_json(
                        self._content_key(record.sha256),
                        {"path": record.path, "size": record.size, "version": record.version},
                    )
        finally:
            temp.discard()
        return record

    def _upload(self, temp: TempFile, object_key: str, mime: str | None) -> str | None:
        """Upload a closed temporary file; the new object's ETag."""
        content_type = mime or DEFAULT_CONTENT_TYPE
        if temp.size < MULTIPART_THRESHOLD:
            # One PUT, which answers with the ETag: no request more to learn it.
            with open(temp.path, "rb") as body:
                answer = self._client.put_object(
                    Bucket=self.bucket, Key=object_key, Body=body, ContentType=content_type
                )
            return answer.get("ETag")
        self._client.upload_file(
            os.fspath(temp.path),
            self.bucket,
            object_key,
            ExtraArgs={"ContentType": content_type},
            Config=self._transfer,
        )
        return self._client.head_object(Bucket=self.bucket, Key=object_key).get("ETag")

    def _same_bytes(self, record: StoredFile) -> StoredFile | None:
        """The object already holding ``record``'s bytes, if the content map names one that
        is still the object it recorded."""
        from botocore.exceptions import ClientError

        try:
            known = self._read_json(self._content_key(record.sha256))
            if known is None or known.get("size") != record.size:
                return None
            path = str(known["path"])
            head = self._client.head_object(Bucket=self.bucket, Key=self.object_key(path))
        except ClientError:
            return None
        except (KeyError, TypeError, StorageError):
            return None
        if head["ContentLength"] != record.size or head.get("ETag") != known.get("version"):
            return None
        return replace(record, path=path, version=known.get("version"))

    def _read_entry(self, object_key: str) -> StoredFile | None:
        data = self._read_json(object_key)
        return None if data is None else entry_from(data)

    def _read_json(self, object_key: str) -> dict[str, Any] | None:
        """A JSON object of the store's bookkeeping; None when absent or not an object."""
        from botocore.exceptions import ClientError

        try:
            body = self._client.get_object(Bucket=self.bucket, Key=object_key)["Body"]
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        with body:
            try:
                data = json.loads(body.read())
            except ValueError:
                return None
        return data if isinstance(data, dict) else None

    def _write_json(self, object_key: str, data: dict[str, Any]) -> None:
        self._client.put_object(
            Bucket=self.bucket,
            Key=object_key,
            Body=json.dumps(data, ensure_ascii=False).encode("utf-8"),
            ContentType="application/json",
        )

    @contextlib.contextmanager
    def _storage_errors(self, what: str) -> Iterator[None]:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except (BotoCoreError, ClientError, Boto3Error) as exc:
            # A failed upload's own message names the local temporary file: the server's says why.
            cause = exc.__context__ if isinstance(exc.__context__, ClientError) else exc
            raise StorageError(f"{what}: {cause}") from exc

    # -- helpers ---------------------------------------------------------------------------

    def object_key(self, name: str) -> str:
        """The key of ``name``, refusing names that would leave the prefix or hit the index."""
        parts = name.replace("\\", "/").split("/")
        if any(part in {"", ".", ".."} for part in parts) or parts[0] == ".mediapipe":
            raise StorageError(f"file name {name!r} would leave the media store")
        return self.prefix + "/".join(parts)

    def _index_key(self, key: str) -> str:
        return f"{self.prefix}{INDEX_FOLDER}{key}.json"

    def _content_key(self, sha256: str) -> str:
        return f"{self.prefix}{CONTENT_FOLDER}{sha256}.json"

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


def _missing(exc: Any) -> bool:
    """Whether a botocore ClientError says the object does not exist."""
    error = exc.response.get("Error", {}).get("Code")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return error in {"NoSuchKey", "404", "NotFound"} or status == 404
