"""nginx on 127.0.0.1 with a free port, serving the corpus; a process of ours, stopped by PID."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path
    from types import TracebackType

HOST = "127.0.0.1"

_CONFIG = """\
# Written by bench/server.py; nginx runs in the foreground as a child of the benchmark.
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 16384;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;

events {{
    # Stock Scrapy 2.19 can open one connection per queued request (see bench/README.md).
    worker_connections 8192;
}}

http {{
    types {{
        image/jpeg jpg jpeg;
        image/png png;
        image/gif gif;
        image/webp webp;
        video/mp4 mp4;
    }}
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    gzip off;
    etag on;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;

    server {{
        listen {host}:{port};
        root {root};
        location / {{
            try_files $uri =404;
        }}
    }}
}}
"""


def find_nginx() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if found is None:
        raise RuntimeError("nginx is not installed: run bash bench/setup.sh")
    return found


def nginx_version(binary: str) -> str:
    done = subprocess.run([binary, "-v"], capture_output=True, text=True, check=False)
    return (done.stderr or done.stdout).strip().removeprefix("nginx version: ")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def die_with_parent() -> None:
    """``preexec_fn``: the child gets SIGTERM if the benchmark dies (Linux PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


class Nginx:
    """``with Nginx(root, prefix) as server: server.url(path)``."""

    def __init__(self, root: Path, prefix: Path) -> None:
        self.root = root.resolve()
        self.prefix = prefix.resolve()
        self.binary = find_nginx()
        self.version = nginx_version(self.binary)
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}/{path}"

    def __enter__(self) -> Nginx:
        self._stop_leftover()
        for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.prefix / "tmp" / name).mkdir(parents=True, exist_ok=True)
        for _attempt in range(5):
            self.port = free_port()
            config = self.prefix / "nginx.conf"
            config.write_text(
                _CONFIG.format(prefix=self.prefix, host=HOST, port=self.port, root=self.root),
                "utf-8",
            )
            log = (self.prefix / "stderr.log").open("ab")
            self.process = subprocess.Popen(
                [
                    self.binary,
                    "-p",
                    str(self.prefix),
                    "-c",
                    str(config),
                    "-e",
                    str(self.prefix / "error.log"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                preexec_fn=die_with_parent,
            )
            log.close()
            if self._wait_ready(10.0):
                return self
            self.stop()
        raise RuntimeError(f"nginx did not start; see {self.prefix}/error.log")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            with (
                contextlib.suppress(OSError),
                socket.create_connection((HOST, self.port), timeout=1.0),
            ):
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        """Stop our nginx master (it takes its worker along) by its PID."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGQUIT)  # graceful: finish open requests
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def _stop_leftover(self) -> None:
        """A master left by an earlier benchmark that was killed: ours if its pid file is in our
        prefix and its command line names our config; stop it by that PID."""
        pid_file = self.prefix / "nginx.pid"
        try:
            pid = int(pid_file.read_text().strip())
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read()  # noqa: SIM115
        except (OSError, ValueError):
            return
        if str(self.prefix / "nginx.conf").encode() in cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGQUIT)
            for _ in range(100):
                if not os.path.exists(f"/proc/{pid}"):
                    break
                time.sleep(0.05)
