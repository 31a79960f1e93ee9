"""Which process wrote a temporary file, and whether it may still run.

Every sweep at start (temporary files, the upload journal's partial entries) removes only what
no live process can still be writing: on this machine a file names its process; a file of
another machine sharing the folder is removed only once it is long untouched, since no process
of this machine can tell whether that one still runs.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import secrets
import socket
from pathlib import Path

# Tells this process's files from those of an earlier process that had the same pid (pids are
# reused), so that a sweep never keeps a dead run's leftovers.
RUN_TAG = secrets.token_hex(4)

# Another machine's file is removed once untouched this long. It must exceed the longest
# download or upload of one file by any crawl sharing the folder.
FOREIGN_STALE_S = 24 * 3600.0

# h<host digest>b<boot digest>-<pid>-<run tag>-..., or, from version 0.2, <pid>-<run tag>-...
_TAGGED = re.compile(r"h([0-9a-f]{8})b([0-9a-f]{8})-(\d+)-(.*)\Z", re.DOTALL)
_UNTAGGED = re.compile(r"(\d+)-(.*)\Z", re.DOTALL)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this machine (maybe another one than before)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@functools.cache
def host_identity() -> str:
    """This machine, and the pid namespace in it: containers may share a folder and a host name
    but not their pids."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return f"{socket.gethostname()} {namespace}".strip()


@functools.cache
def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def start_time(pid: int) -> str | None:
    """When the process started, in clock ticks since boot (Linux); None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name, in parentheses, may hold spaces: fields are counted after it.
    after_name = stat.rpartition(")")[2].split()
    return after_name[19] if len(after_name) > 19 else None


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:8]


@functools.cache
def _tag_of(pid: int) -> str:
    return f"h{_digest(host_identity())}b{_digest(boot_id())}-{pid}-{RUN_TAG}"


def owner_tag() -> str:
    """``h<host>b<boot>-<pid>-<run tag>``: how the names of this process's files begin."""
    return _tag_of(os.getpid())


def owner_may_run(name: str, age_s: float) -> bool:
    """Whether the process that named a file ``name`` (untouched for ``age_s`` seconds) may
    still be writing it. Names of no known form are nobody's."""
    tagged = _TAGGED.match(name)
    if tagged is not None:
        host, boot, pid_text, rest = tagged.groups()
        if host != _digest(host_identity()):
            return age_s < FOREIGN_STALE_S
        if boot != _digest(boot_id()):
            return False  # this machine restarted since
    else:
        untagged = _UNTAGGED.match(name)
        if untagged is None:
            return False
        pid_text, rest = untagged.groups()
    pid = int(pid_text)
    if pid <= 0:
        return False
    if pid == os.getpid():
        # This process holds the pid now: an earlier one with it cannot be running any more.
        return rest.startswith(f"{RUN_TAG}-")
    return pid_alive(pid)
