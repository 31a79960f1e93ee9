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
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from mediapipe.settings import SettingError
from mediapipe.store.index import StoredFile, entry_from
from mediapipe.store.local import FilesystemStore
from mediapipe.store.protocol import StorageError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from scrapy.settings import BaseSettings

    from mediapipe.settings import MediaConfig
    from mediapipe.store.temp import TempFile

INSTALL_HINT = "pip install 'scrapy-mediapipe[s3]'"
INDEX_FOLDER = ".mediapipe/index/"
# SHA-256 → the object holding those bytes, for deduplication.
CONTENT_FOLDER = ".mediapipe/content/"
DEFAULT_CONTENT_TYPE = "application/octet-stream"
# Above this size a file goes up in parts, so that a failed part is retried alone.
MULTIPART_THRESHOLD = 16 * 1024 * 1024
MULTIPART_CHUNK = 16 * 1024 * 1024


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
        deduplicate: bool = True,
    ) -> None:
        self.uri = uri
        self._deduplicate = deduplicate
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
            str(config.store),
            temp_dir=Path(temp_dir),
            client_options=options,
            fsync=config.fsync,
            deduplicate=config.deduplicate,
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
            self._write_json(self._index_key(key), _entry_json(fresh))
        return fresh

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
        etag: str | None = None,
        last_modified: str | None = None,
        may_share: bool = True,
    ) -> StoredFile:
        try:
            with self._storage_errors(f"cannot store {name} in {self.uri}"):
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
                    etag=etag,
                    last_modified=last_modified,
                )
                shared = self._same_bytes(record) if self._deduplicate and may_share else None
                if shared is not None:
                    record = replace(
                        record,
                        path=shared.path,
                        version=shared.version,
                        deduplicated=shared.path != record.path,
                    )
                else:
                    version = self._upload(temp, object_key, mime)
                    record = replace(record, version=version)
                # Only after the upload: an index object always names a complete file.
                self._write_json(self._index_key(key), _entry_json(record))
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

    def _abort_stale_uploads(self) -> None:
        # A killed crawl leaves its unfinished multipart uploads behind, billed and invisible.
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            pages = self._client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for page in pages:
                for upload in page.get("Uploads", []):
                    self._client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(
                f"cannot list or abort unfinished uploads in {self.uri}: {exc}"
            ) from exc


def _missing(exc: Any) -> bool:
    """Whether a botocore ClientError says the object does not exist."""
    error = exc.response.get("Error", {}).get("Code")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return error in {"NoSuchKey", "404", "NotFound"} or status == 404


# Every field an index object keeps: all but the commit's own ``deduplicated``.
_ENTRY_FIELDS = tuple(item.name for item in fields(StoredFile) if item.name != "deduplicated")


def _entry_json(record: StoredFile) -> dict[str, Any]:
    data = asdict(record)
    return {name: data[name] for name in _ENTRY_FIELDS}
