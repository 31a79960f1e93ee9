"""The writer process: a child of the crawl that writes, hashes, measures and commits the small
bodies that arrived whole, so that the crawl's own process keeps one busy thread.

Writer threads would do the same work, but every system call a thread makes releases the GIL
and must win it back from the reactor thread, which holds it most of the time: measured here,
writing and hashing 100 kB took 0.12 ms on an idle interpreter and 8 ms beside a busy thread,
and each hand-back interrupts the reactor. A body of at most ``spool.COALESCE`` bytes is sent
whole over a Unix socket instead (one write on the reactor thread); the child commits it into
the same local store (same folder, same SQLite index, which both processes share) and answers
with its :class:`~mediapipe.store.files.StoredFile`. Larger bodies, and every store but a local
folder without fsync, keep the writer threads.

The child exits when the crawl closes its end of the socket, or dies; its temporary files carry
its own pid, so the next crawl's sweep removes what a killed child left.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import socket
import struct
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

from PIL import Image

from mediapipe.committing import SizeRule, commit_measured
from mediapipe.reasons import MediaError
from mediapipe.store.local import FilesystemStore

if TYPE_CHECKING:
    from mediapipe.store.files import FileFacts, StoredFile
    from mediapipe.store.protocol import MediaStore

logger = logging.getLogger(__name__)

_LENGTH = struct.Struct(">I")
# How long close() waits for the child to finish its last commits and exit, and how often it
# looks.
EXIT_TIMEOUT_S = 10.0
EXIT_POLL_S = 0.005


@dataclass(frozen=True, slots=True)
class CommitJob:
    """One validated body, whole, with what its commit needs."""

    chunks: tuple[bytes, ...]
    name: str
    key: str
    facts: FileFacts
    raster: bool
    rule: SizeRule
    may_share: bool


# What the child answers: the stored file, or (kind, errno, message) of why not.
Failure = tuple[str, int | None, str]


def supports(store: MediaStore) -> TypeGuard[FilesystemStore]:
    """Whether a writer process can commit into ``store``: a local folder written without
    fsync (with it, a commit waits on the disk, and two writer threads wait in parallel), on a
    system that passes a socket to a child process (POSIX)."""
    # Exactly the built-in store: the child rebuilds it from its folder, so a subclass's own
    # behaviour would be skipped. And a Python it can start: a frozen program's executable is
    # the program itself.
    return (
        os.name == "posix"
        and bool(sys.executable)
        and not getattr(sys, "frozen", False)
        and type(store) is FilesystemStore
        and not store.fsync
    )


def _frame(payload: Any) -> bytes:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


class WriterProcess:
    """The crawl's side: starts the child, sends it jobs, settles each job's future."""

    def __init__(self, store: FilesystemStore) -> None:
        self._store = store
        self._process: subprocess.Popen[bytes] | None = None
        self._socket: socket.socket | None = None
        self._transport: asyncio.Transport | None = None
        self._connecting: asyncio.Future[None] | None = None
        self._pending: dict[int, asyncio.Future[StoredFile]] = {}
        self._next_job = 0
        self.alive = True

    def start(self) -> None:
        """Start the child, if not yet done. The first commit does it: a crawl of large files
        only never needs the child's memory (about 30 MiB)."""
        if self._process is not None:
            return
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        # The child imports mediapipe from where this process found it.
        environment = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, sys.path)))
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "mediapipe.writer_process", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                env=environment,
            )
        finally:
            theirs.close()
        # Pillow's own pixel limit, which the project may have changed, measures images there
        # as it does here.
        handshake = (str(self._store.root), self._store.deduplicate, Image.MAX_IMAGE_PIXELS)
        ours.sendall(_frame(handshake))
        self._socket = ours

    @property
    def pid(self) -> int | None:
        """The child's pid, once started."""
        return None if self._process is None else self._process.pid

    async def commit(self, job: CommitJob) -> StoredFile:
        """The stored file of ``job``; a :class:`MediaError` or ``OSError`` if the child could
        not store it; :class:`WriterStopped` if the child is gone (nothing is known then)."""
        transport = await self._connect()
        loop = asyncio.get_running_loop()
        self._next_job += 1
        frame = _frame((self._next_job, job))
        answer: asyncio.Future[StoredFile] = loop.create_future()
        self._pending[self._next_job] = answer
        transport.write(frame)
        return await answer

    async def _connect(self) -> asyncio.Transport:
        """The open connection to the child, made by the first caller; raises
        :class:`WriterStopped` when there is none to be had, also when the child died while
        this caller waited for it (nothing was sent then)."""
        if self._transport is None and self.alive:
            if self._connecting is None:
                self._connecting = asyncio.ensure_future(self._open_transport())
            await asyncio.shield(self._connecting)
        transport = self._transport
        if transport is None or not self.alive or transport.is_closing():
            raise WriterStopped("the writer process is not running")
        return transport

    async def _open_transport(self) -> None:
        if not self.alive:
            return
        loop = asyncio.get_running_loop()
        try:
            self.start()
            if self._socket is None:
                return
            transport, _ = await loop.create_unix_connection(
                lambda: _Answers(self), sock=self._socket
            )
        except Exception as exc:  # no process or socket to be had: the threads do the work
            self.alive = False
            logger.warning(
                "The writer process could not start (%s): files are committed by the writer "
                "threads",
                exc,
            )
            return
        self._transport = transport
        self._socket = None

    def settle(self, job: int, stored: StoredFile | None, failure: Failure | None) -> None:
        answer = self._pending.pop(job, None)
        if answer is None or answer.done():
            return
        if failure is None:
            assert stored is not None
            answer.set_result(stored)
            return
        kind, number, message = failure
        if kind == "media":
            reason, _, detail = message.partition("\n")
            answer.set_exception(MediaError(reason, detail))
        elif kind == "os":
            failure_os = OSError(message)
            failure_os.errno = number
            answer.set_exception(failure_os)
        else:
            answer.set_exception(WriterBug(message))

    def stopped(self, why: str) -> None:
        self._transport = None  # lost: writes to it would go nowhere
        if self.alive:
            self.alive = False
            if self._process is not None:
                self._process.poll()  # reaped now if it exited, not left a zombie
            logger.warning(
                "The writer process stopped (%s): the files it had not answered for, and all "
                "later ones, are committed by the writer threads",
                why,
            )
        pending, self._pending = self._pending, {}
        for answer in pending.values():
            if not answer.done():
                answer.set_exception(WriterStopped(why))

    async def close(self) -> None:
        """Close the socket and wait, without blocking the loop, for the child to exit (it
        finishes what it has read first)."""
        self.alive = False  # its connection's end is expected from now on
        if self._transport is not None:
            self._transport.close()
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        process = self._process
        if process is None:
            return
        deadline = asyncio.get_running_loop().time() + EXIT_TIMEOUT_S
        while process.poll() is None:
            if asyncio.get_running_loop().time() > deadline:
                process.kill()
                process.wait()
                break
            await asyncio.sleep(EXIT_POLL_S)


class WriterStopped(Exception):
    """The writer process is gone: the job's outcome is unknown, and it can be done again."""


class WriterBug(Exception):
    """An unexpected error in the writer process, with the child's traceback as its text."""


class _Answers(asyncio.Protocol):
    def __init__(self, owner: WriterProcess) -> None:
        self._owner = owner
        self._buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(self._buffer)
            end = _LENGTH.size + length
            if len(self._buffer) < end:
                return
            job, stored, failure = pickle.loads(self._buffer[_LENGTH.size : end])
            del self._buffer[:end]
            self._owner.settle(job, stored, failure)

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner.stopped(str(exc) if exc else "its connection closed")


# -- the child ----------------------------------------------------------------------------------


def _read_exactly(stream: Any, count: int) -> bytes | None:
    data = stream.read(count)
    return data if len(data) == count else None


def _read_frame(stream: Any) -> Any:
    header = _read_exactly(stream, _LENGTH.size)
    if header is None:
        return None
    payload = _read_exactly(stream, _LENGTH.unpack(header)[0])
    return None if payload is None else pickle.loads(payload)


def _run(store: FilesystemStore, job: CommitJob) -> tuple[StoredFile | None, Failure | None]:
    temp = store.new_temp()
    try:
        for chunk in job.chunks:
            temp.write(chunk)
        temp.close()
        # The whole body is at hand: an image header past the sniffed head (a GIF's first
        # frame, a JPEG after a large EXIF block) is read from it, not from the file again.
        whole = job.chunks[0] if len(job.chunks) == 1 else b"".join(job.chunks)
        stored = commit_measured(
            store, temp, job.name, job.key, job.facts, job.raster, whole, job.rule,
            may_share=job.may_share,
        )  # fmt: skip
    except MediaError as failure:
        temp.discard()
        return None, ("media", None, f"{failure.reason}\n{failure.detail}")
    except OSError as exc:
        temp.discard()
        return None, ("os", exc.errno, str(exc))
    except Exception:
        temp.discard()
        return None, ("bug", None, traceback.format_exc())
    return stored, None


def serve(descriptor: int) -> None:
    """The child's loop: one job at a time, until the crawl closes the socket."""
    with socket.socket(fileno=descriptor) as connection:
        reader = connection.makefile("rb")
        root, deduplicate, max_image_pixels = _read_frame(reader)
        Image.MAX_IMAGE_PIXELS = max_image_pixels
        store = FilesystemStore(Path(root), deduplicate=deduplicate)
        store.open(secondary=True)
        try:
            while (request := _read_frame(reader)) is not None:
                job_id, job = request
                stored, failure = _run(store, job)
                connection.sendall(_frame((job_id, stored, failure)))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the crawl is gone
        finally:
            store.close()


if __name__ == "__main__":
    # Signals to the process group (Ctrl-C, a service manager's SIGTERM) are the crawl's to
    # act on; the child ends when the crawl closes its socket, never between a commit's index
    # entry and its rename.
    import signal

    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)
    serve(int(sys.argv[1]))
    sys.stdout.flush()
    os._exit(0)  # the store is closed: the interpreter's teardown would only delay the crawl
