"""The journal of this machine's unfinished multipart uploads to a bucket.

A crawl killed in the middle of a multipart upload leaves the upload behind, invisible and
billed. Several crawls may share a prefix, so a start must not abort every unfinished upload
there: the journal tells those of processes that died on this machine from those still running.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mediapipe.store.temp import RUN_TAG, pid_alive

if TYPE_CHECKING:
    from collections.abc import Iterator


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
        return cls(_host(), _boot_id(), pid, RUN_TAG, _start_time(pid))

    def has_ended(self) -> bool | None:
        """True if the process is gone, False if it may still run, None if it ran on another
        machine (or in another pid namespace), where this one cannot tell."""
        if self.host != _host():
            return None
        if self.boot and self.boot != _boot_id():
            return True
        if self.pid == os.getpid():
            return self.run != RUN_TAG
        if not pid_alive(self.pid):
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
    if not pid.isdigit() or int(pid) <= 0 or not pid_alive(int(pid)):
        return False
    return int(pid) != os.getpid() or rest.startswith(f"{RUN_TAG}-")


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
    after_name = stat.rpartition(")")[2].split()
    return after_name[19] if len(after_name) > 19 else None
