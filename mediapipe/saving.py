"""Committing validated bodies to the store: the image's pixel limit, then the store's commit,
on the body's lane; and ``data:`` URIs, decoded and written there too."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from mediapipe._imaging import TOO_MANY_PIXELS, image_size
from mediapipe.datauri import BadDataURI, open_data_uri
from mediapipe.exceptions import MediaError
from mediapipe.mediatypes import ContentTypeVerdict, classify_content_type
from mediapipe.naming import choose_extension, epoch_from_headers
from mediapipe.sniff import SNIFF_BYTES, judge_body
from mediapipe.store.files import FileFacts
from mediapipe.transfer import ReceivedBody, refusal_for

if TYPE_CHECKING:
    from collections.abc import Iterator
    from concurrent.futures import Executor

    from mediapipe.naming import NameRule
    from mediapipe.settings import MediaConfig
    from mediapipe.spool import Lanes
    from mediapipe.store.files import StoredFile
    from mediapipe.store.protocol import MediaStore
    from mediapipe.store.temp import TempFile

# A response's ETag and Last-Modified, kept to revalidate the file later.
Validators = tuple[str | None, str | None]


class Saver:
    """Puts validated bodies into the store under their final names."""

    def __init__(self, config: MediaConfig, store: MediaStore, lanes: Lanes) -> None:
        self.config = config
        self.store = store
        self.lanes = lanes

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
        """Measure and commit a validated body on its lane, after its last chunk is written.

        ``may_share`` is false for a name the caller chose: it must hold the file itself."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                body.lane, self._save_blocking, body, name, key, credentials, validators, may_share
            )
        except (OSError, ValueError) as exc:
            raise MediaError("storage", str(exc)) from exc

    def _save_blocking(
        self,
        body: ReceivedBody,
        name: str,
        key: str,
        credentials: bool,
        validators: Validators,
        may_share: bool,
    ) -> StoredFile:
        temp, verdict = body.temp, body.verdict
        try:
            body.check_written()
            temp.close()
        except BaseException:
            temp.discard()
            raise
        size = image_size(temp.path, verdict.mime, body.head) if verdict.raster else None
        limit = self.config.max_pixels
        if size == TOO_MANY_PIXELS or (size and limit and size[0] * size[1] > limit):
            temp.discard()
            raise MediaError("too-large", f"the image declares more than {limit} pixels")
        facts = FileFacts(
            mime=verdict.mime,
            width=size[0] if size else None,
            height=size[1] if size else None,
            credentials=credentials,
            etag=validators[0],
            last_modified=validators[1],
        )
        return self.store.commit(temp, name, key, facts, may_share=may_share)

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
