"""Committing validated bodies to the store: the image's pixel limit, then the store's commit,
on the body's lane; and ``data:`` URIs, decoded and written there too."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from mediapipe.committing import commit_measured
from mediapipe.datauri import BadDataURI, open_data_uri
from mediapipe.exceptions import MediaError
from mediapipe.mediatypes import ContentTypeVerdict, classify_content_type
from mediapipe.naming import choose_extension, epoch_from_headers
from mediapipe.sniff import SNIFF_BYTES, judge_body
from mediapipe.store.files import FileFacts
from mediapipe.transfer import ReceivedBody, refusal_for
from mediapipe.writer_process import CommitJob, WriterBug, WriterStopped

if TYPE_CHECKING:
    from collections.abc import Iterator
    from concurrent.futures import Executor

    from mediapipe.naming import NameRule
    from mediapipe.settings import MediaConfig
    from mediapipe.spool import Lanes
    from mediapipe.store.files import StoredFile
    from mediapipe.store.protocol import MediaStore
    from mediapipe.store.temp import TempFile
    from mediapipe.writer_process import WriterProcess

# A response's ETag and Last-Modified, kept to revalidate the file later.
Validators = tuple[str | None, str | None]


class Saver:
    """Puts validated bodies into the store under their final names."""

    def __init__(
        self,
        config: MediaConfig,
        store: MediaStore,
        lanes: Lanes,
        writer: WriterProcess | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.lanes = lanes
        self.writer = writer

    async def save(
        self,
        body: ReceivedBody,
        name: str,
        key: str,
        *,
        credentials: bool,
        validators: Validators = (None, None),
        may_share: bool = True,
    ) -> StoredFile:
        """Measure and commit a validated body: a small one in the writer process when there
        is one, else on its lane, after its last chunk is written.

        ``may_share`` is false for a name the caller chose: it must hold the file itself."""
        facts = FileFacts(
            mime=body.verdict.mime,
            width=None,
            height=None,
            credentials=credentials,
            etag=validators[0],
            last_modified=validators[1],
        )
        writer = self.writer
        try:
            if body.chunks is not None and writer is not None and writer.alive:
                job = CommitJob(
                    body.chunks, name, key, facts, body.verdict.raster, self.config.size_rule,
                    may_share,
                )  # fmt: skip
                try:
                    return await writer.commit(job)
                except WriterStopped:
                    pass  # nothing is known of it: the lane does it all again
                except WriterBug as bug:
                    raise RuntimeError(f"in the writer process: {bug}") from None
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                body.lane, self._save_blocking, body, name, key, facts, may_share
            )
        except (OSError, ValueError) as exc:
            raise MediaError("storage", str(exc)) from exc

    def _save_blocking(
        self, body: ReceivedBody, name: str, key: str, facts: FileFacts, may_share: bool
    ) -> StoredFile:
        temp = body.temp
        try:
            body.check_written()
            temp.close()
        except BaseException:
            temp.discard()
            raise
        return commit_measured(
            self.store, temp, name, key, facts, body.verdict.raster, body.head,
            self.config.size_rule, may_share=may_share,
        )  # fmt: skip

    async def save_data_uri(self, source: str, names: NameRule) -> StoredFile:
        """Decode, validate and store a ``data:`` URI source."""
        loop = asyncio.get_running_loop()
        lane = self.lanes.pick()
        # Decoding, hashing and writing a large URI is long work: a worker thread does it.
        body = await loop.run_in_executor(lane, self._write_data_uri, source, lane)
        try:
            ext = choose_extension(body.verdict.ext, body.declared, None)
            name = names.name(epoch_from_headers(None, None), ext)
            return await self.save(
                body, name, names.key, credentials=False, may_share=names.target is None
            )
        except BaseException:
            body.temp.discard()
            raise

    def _write_data_uri(self, source: str, lane: Executor) -> ReceivedBody:
        try:
            declared, pieces = open_data_uri(source)
        except BadDataURI as exc:
            raise MediaError("bad-data-uri", str(exc)) from exc
        if (
            declared is not None
            and classify_content_type(declared, self.config.media_types)
            is ContentTypeVerdict.REFUSE
        ):
            raise MediaError("content-type", f"data: URI declares {declared}")
        try:
            temp = self.store.new_temp()
        except OSError as exc:
            raise MediaError("storage", str(exc)) from exc
        try:
            head = self._write_pieces(temp, pieces)
            verdict = judge_body(declared, head, None)
            refusal = refusal_for(verdict, self.config.media_types, head)
            if refusal is not None:
                declares = f"data: URI declares {declared or 'no type'}"
                detail = f"{refusal.detail}; {declares}" if refusal.detail else declares
                raise MediaError(refusal.reason, detail)
        except BadDataURI as exc:
            temp.discard()
            raise MediaError("bad-data-uri", str(exc)) from exc
        except OSError as exc:
            temp.discard()
            raise MediaError("storage", str(exc)) from exc
        except BaseException:
            temp.discard()
            raise
        return ReceivedBody(temp, verdict, declared, lane, _written_in_one_go, head)

    def _write_pieces(self, temp: TempFile, pieces: Iterator[bytes]) -> bytes:
        head = b""
        for piece in pieces:
            if len(head) < SNIFF_BYTES:
                head += piece[: SNIFF_BYTES - len(head)]
            if self.config.max_size and temp.size + len(piece) > self.config.max_size:
                raise MediaError("too-large", f"data: URI over the limit {self.config.max_size}")
            temp.write(piece)
        return head


def _written_in_one_go() -> None:
    """A data: URI was written in one go, on its lane: no earlier write can have failed."""
