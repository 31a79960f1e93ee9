"""The state of one media download, shared by the pipeline and the downloader middleware.

The pipeline creates a :class:`Transfer` and puts it in ``request.meta["mediapipe"]``; the
middleware feeds it the response headers and body chunks as they arrive, so refusals happen at
the headers and the body goes to a temporary file of the store, written on a worker thread.
"""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mediapipe.credentials import CredentialScope
from mediapipe.exceptions import MediaError
from mediapipe.mediatypes import ContentTypeVerdict, classify_content_type, essence
from mediapipe.sniff import SNIFF_BYTES, Verdict, judge_body, non_media
from mediapipe.spool import Spool

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Executor
    from typing import BinaryIO

    from scrapy.http import Headers

    from mediapipe.store.protocol import MediaStore
    from mediapipe.store.temp import TempFile

_DECODE_CHUNK = 256 * 1024
GZIP_ENCODINGS = frozenset({"gzip", "x-gzip"})
SUPPORTED_ENCODINGS = GZIP_ENCODINGS | {"deflate"}
_GZIP_MAGIC = b"\x1f\x8b"


def refusal_for(verdict: Verdict, media_types: tuple[str, ...], head: bytes) -> MediaError | None:
    """Why a judged body must not be stored: the sniffer's reason (naming a non-media format
    the body is), or a sniffed type outside ``MEDIAPIPE_MEDIA_TYPES`` (contract §4.6), whatever
    type was declared."""
    if verdict.reason is not None:
        kind = non_media(head) if verdict.reason == "content-mismatch" else None
        return MediaError(verdict.reason, f"the body is a {kind} file, not media" if kind else "")
    if (
        verdict.mime is not None
        and classify_content_type(verdict.mime, media_types) is ContentTypeVerdict.REFUSE
    ):
        return MediaError(
            "content-type", f"the body is {verdict.mime}, not in MEDIAPIPE_MEDIA_TYPES"
        )
    return None


@dataclass(frozen=True, slots=True)
class ReceivedBody:
    """A complete, validated body in its temporary file, ready to be committed on its lane."""

    temp: TempFile
    verdict: Verdict
    declared: str | None
    lane: Executor
    # Raises a write error still queued on the lane as ``storage``; run on the lane.
    check_written: Callable[[], None]
    # The first bytes, as sniffed: most image headers are in them.
    head: bytes = b""
    # The whole body, when it is small enough to be still in memory (nothing of it was written
    # yet): the writer process takes it from here.
    chunks: tuple[bytes, ...] | None = None


class Transfer:
    """Receives one media body; one attempt at a time (retries and redirects reset it)."""

    def __init__(
        self,
        source: str,
        store: MediaStore,
        executor: Executor,
        media_types: tuple[str, ...],
        max_size: int,
    ) -> None:
        self.source = source
        self.store = store
        self.lane = executor
        self.media_types = media_types
        self.max_size = max_size
        # Which credentials go with each hop (credentials.apply_host_profile keeps it).
        self.credentials = CredentialScope()
        # Of the current attempt, from its headers on:
        self._declared: str | None = None
        self._encoding: str | None = None
        self._refusal: MediaError | None = None
        self._verdict: Verdict | None = None
        self._temp: TempFile | None = None
        self._finished = False
        self._spool: Spool | None = None
        self._head = bytearray()
        self._received = 0
        # Of the last answer, for the pipeline's failure reason and retry delay:
        self._last_status: int | None = None
        self._retry_after: str | None = None
        self._producer: tuple[Callable[[], None], Callable[[], None]] | None = None

    @property
    def last_status(self) -> int | None:
        """The status of the last answer (a redirect's, when Scrapy gave up following)."""
        return self._last_status

    @property
    def retry_after(self) -> str | None:
        """The ``Retry-After`` of the last answer that was not stored."""
        return self._retry_after

    @property
    def encoded(self) -> bool:
        """Whether the body arrived compressed (then decoded from its temporary file)."""
        return self._encoding is not None

    def attach_producer(self, pause: Callable[[], None], resume: Callable[[], None]) -> None:
        """Called by a streaming download handler: how to pause the network while the disk
        catches up."""
        self._producer = (pause, resume)
        if self._spool is not None:
            self._spool.attach_producer(pause, resume)

    # -- called by the middleware, while the response arrives -------------------------------

    def answered(self, status: int) -> None:
        self._last_status = status

    def not_stored(self, status: int, retry_after: str | None = None) -> None:
        """The answer is a redirect or an error: nothing of its body is kept."""
        self._last_status = status
        self.discard()
        self._refusal = None
        self._retry_after = retry_after

    def begin(self, headers: Headers, body_length: object) -> MediaError | None:
        """Start a new attempt from its response headers; return a refusal, if any."""
        self.discard()
        self._finished = False
        self._refusal = None
        self._verdict = None
        self._head = bytearray()
        self._received = 0
        raw_type = headers.get(b"Content-Type")
        self._declared = essence(raw_type)
        encoding = essence(headers.get(b"Content-Encoding"))
        self._encoding = None if encoding in (None, "identity") else encoding
        if classify_content_type(raw_type, self.media_types) is ContentTypeVerdict.REFUSE:
            return self._refuse("content-type", f"server sent {self._declared}")
        if self._encoding is not None and self._encoding not in SUPPORTED_ENCODINGS:
            return self._refuse("content-type", f"unsupported Content-Encoding {self._encoding}")
        # The limit applies to the bytes on the wire as well as to the decoded ones, so a
        # compressed body cannot fill the disk before it is decoded.
        if self.max_size and isinstance(body_length, int) and body_length > self.max_size:
            return self._refuse(
                "too-large", f"Content-Length {body_length} > limit {self.max_size}"
            )
        return None

    def receive(self, data: bytes) -> MediaError | None:
        """Take one body chunk; return a refusal when the body must not be read further."""
        if self._refusal is not None:
            return self._refusal
        self._received += len(data)
        if self.max_size and self._received > self.max_size:
            return self._refuse("too-large", f"body grew past the limit {self.max_size}")
        try:
            self._spooled().write(data)
        except OSError as exc:
            return self._refuse("storage", str(exc))
        if self._encoding is None and self._verdict is None and len(self._head) < SNIFF_BYTES:
            self._head += data[: SNIFF_BYTES - len(self._head)]
            if len(self._head) >= SNIFF_BYTES:
                return self._judge()
        return None

    async def wait_for_disk(self) -> None:
        """For handlers that pull chunks: wait while too much is queued for the disk."""
        if self._spool is not None:
            await self._spool.wait_below_high_water()

    # -- called once the whole response is in --------------------------------------------------

    async def finish(self) -> TempFile:
        """Validate the complete body and return its temporary file (still open: closing it
        is disk work, left to the worker thread that commits it)."""
        if self._refusal is not None:
            raise self._refusal
        if self._spool is None or self._received == 0:
            raise MediaError("empty", "the server sent no body")
        temp = self._spool.temp
        if self._encoding is not None:
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(self.lane, self.check_written)
                temp = await loop.run_in_executor(self.lane, self._decoded, temp)
            except BaseException as failure:
                if isinstance(failure, MediaError):
                    self._refusal = failure
                self.discard()
                raise
            self._spool = None
            self._temp = temp
            try:
                self._head = bytearray(temp.read_head(SNIFF_BYTES))
            except OSError as exc:
                self.discard()
                raise MediaError("storage", str(exc)) from exc
        if self._verdict is None and self._judge() is not None:
            raise self._refusal  # type: ignore[misc]
        self._temp = temp
        self._finished = True
        return temp

    async def body(self) -> ReceivedBody:
        """The validated body of a 2xx answer (validating it now if the middleware did not)."""
        if not self._finished:
            await self.finish()
        assert self._temp is not None
        assert self._verdict is not None
        return ReceivedBody(
            self._temp,
            self._verdict,
            self._declared,
            self.lane,
            self.check_written,
            bytes(self._head),
            self._spool.gathered() if self._spool is not None else None,
        )

    def discard(self) -> None:
        if self._spool is not None:
            self._spool.discard()
            self._spool = None
        elif self._temp is not None:
            self._temp.discard()
        self._temp = None

    # -- helpers -------------------------------------------------------------------------------

    def _spooled(self) -> Spool:
        if self._spool is None:
            self._spool = Spool(self.store.new_temp(), self.lane)
            if self._producer is not None:
                self._spool.attach_producer(*self._producer)
        return self._spool

    def _judge(self) -> MediaError | None:
        self._verdict = judge_body(self._declared, bytes(self._head), self.source)
        refusal = refusal_for(self._verdict, self.media_types, bytes(self._head))
        if refusal is not None:
            declared = f"declared {self._declared or 'no type'}"
            detail = f"{refusal.detail}; {declared}" if refusal.detail else declared
            return self._refuse(refusal.reason, detail)
        return None

    def _refuse(self, reason: str, detail: str) -> MediaError:
        self._refusal = MediaError(reason, detail)
        self.discard()
        return self._refusal

    def check_written(self) -> None:
        """On the lane, once every chunk is written: raise a write error as ``storage``."""
        if self._spool is not None:
            try:
                self._spool.complete()
            except OSError as exc:
                raise MediaError("storage", str(exc)) from exc

    def _decoded(self, encoded: TempFile) -> TempFile:
        # Runs on the file's lane, after its chunks. Scrapy's HttpCompressionMiddleware would
        # decode response.body in memory; media bodies are decoded from the temporary file,
        # chunk by chunk, under the size limit.
        try:
            encoded.close()
            decoded = self.store.new_temp()
        except BaseException:
            encoded.discard()
            raise
        try:
            with encoded.path.open("rb") as source:
                self._inflate(source, decoded)
        except zlib.error as exc:
            decoded.discard()
            raise MediaError("truncated", f"cannot decode {self._encoding} body: {exc}") from exc
        except OSError as exc:
            decoded.discard()
            raise MediaError("storage", str(exc)) from exc
        except BaseException:
            decoded.discard()
            raise
        finally:
            encoded.discard()
        self._received = decoded.size
        return decoded

    def _inflate(self, source: BinaryIO, target: TempFile) -> None:
        gzip = self._encoding in GZIP_ENCODINGS
        pending = source.read(_DECODE_CHUNK)
        inflater = zlib.decompressobj(_wbits(gzip, pending))
        while True:
            ended = False
            if not pending:
                pending = source.read(_DECODE_CHUNK)
                ended = not pending
            # With no input left, a call still drains what zlib holds back.
            out = inflater.decompress(pending, _DECODE_CHUNK)
            self._write_limited(target, out)
            if inflater.eof:
                # RFC 1952 lets a gzip body hold several members one after another: the body
                # is their concatenation. Anything else after the stream is not part of it.
                pending = inflater.unused_data
                if gzip and len(pending) < len(_GZIP_MAGIC):
                    pending += source.read(_DECODE_CHUNK)
                if not (gzip and pending.startswith(_GZIP_MAGIC)):
                    return
                inflater = zlib.decompressobj(_wbits(gzip, pending))
                continue
            pending = inflater.unconsumed_tail
            if ended and not pending and not out:
                raise MediaError("truncated", f"{self._encoding} body ends early")

    def _write_limited(self, target: TempFile, data: bytes) -> None:
        if self.max_size and target.size + len(data) > self.max_size:
            raise MediaError("too-large", f"decoded body grew past the limit {self.max_size}")
        target.write(data)


def _wbits(gzip: bool, head: bytes) -> int:
    """zlib's window bits for a body that starts with ``head``.

    ``deflate`` should be a zlib stream (RFC 9110), but many servers send raw deflate data
    without the zlib header; the header's check bits tell the two apart.
    """
    if gzip:
        return 16 + zlib.MAX_WBITS
    zlib_header = len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0
    return zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS
