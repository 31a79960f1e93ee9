"""The per-input result record (contract §2) and how it becomes a URL for ``images`` (§6)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from mediapipe.datauri import is_data_uri

if TYPE_CHECKING:
    from mediapipe.coordination.claims import SharedRecord
    from mediapipe.options import CallOptions
    from mediapipe.settings import MediaConfig
    from mediapipe.store.files import StoredFile

# Unreserved characters plus "+", which the label keeps and which is literal in a path. A ","
# is encoded: CSV exports join list fields with it.
_NAME_SAFE = "-._~+"


@dataclass(frozen=True, slots=True)
class MediaRecord:
    """What happened to one input of ``images``."""

    source: Any
    url: Any
    path: str | None
    status: str
    reason: str | None = None
    mime: str | None = None
    size: int | None = None
    sha256: str | None = None
    width: int | None = None
    height: int | None = None
    # Whether credentials went with the download: provenance then stays off every URL made
    # from this record (contract §6). Not exported: it says nothing about the file.
    credentials: bool = False
    # With MEDIAPIPE_THUMBS: name -> {"url", "path", "width", "height"} of each thumbnail made
    # of this file ({} when there are none), and why they are missing when they are (a word).
    # None without MEDIAPIPE_THUMBS: the record then has no such keys.
    thumbnails: dict[str, dict[str, Any]] | None = None
    thumbnails_reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        # dataclasses.asdict deep-copies recursively; every field here is a plain value.
        record = {name: getattr(self, name) for name in _FIELDS}
        if self.thumbnails is not None:
            record["thumbnails"] = {name: dict(thumb) for name, thumb in self.thumbnails.items()}
            record["thumbnails_reason"] = self.thumbnails_reason
        return record


def local_url(prefix: str, path: str) -> str:
    """``prefix`` + the percent-encoded stored path (its "/" kept)."""
    return prefix + quote(path, safe=_NAME_SAFE + "/")


def with_provenance(url: str, source: str, add_url: bool | str) -> str:
    """Append the ``?url=`` provenance of contract §6 to a local URL."""
    if add_url is False:
        return url
    if add_url is True:
        return f"{url}?url={quote(source, safe='')}"
    return f"{url}?{add_url}"


class RecordMaker:
    """Makes the records of stored sources, with their local URLs and provenance."""

    def __init__(self, config: MediaConfig) -> None:
        self.config = config

    def of_stored(
        self, source: str, stored: StoredFile, status: str, call: CallOptions
    ) -> MediaRecord:
        return MediaRecord(
            source=source,
            url=self._url(source, stored.path, stored.credentials, call),
            path=stored.path,
            status=status,
            mime=stored.mime,
            size=stored.size,
            sha256=stored.sha256,
            width=stored.width,
            height=stored.height,
            credentials=stored.credentials,
        )

    def of_shared(self, source: str, shared: SharedRecord, call: CallOptions) -> MediaRecord:
        """The record of a source another worker resolved: the file it stored, reused here
        (``uptodate``; ``data`` for a data: URI), or the same failure."""
        if shared.status == "failed" or shared.path is None:
            return MediaRecord(
                source=source, url=source, path=None, status="failed", reason=shared.reason
            )
        return MediaRecord(
            source=source,
            url=self._url(source, shared.path, shared.credentials, call),
            path=shared.path,
            status="data" if shared.status == "data" else "uptodate",
            mime=shared.mime,
            size=shared.size,
            sha256=shared.sha256,
            width=shared.width,
            height=shared.height,
            credentials=shared.credentials,
        )

    def for_source(self, record: MediaRecord, source: str, call: CallOptions) -> MediaRecord:
        """A finished record given to another occurrence of the same source."""
        url = self._url(source, record.path, record.credentials, call) if record.path else source
        return dataclasses.replace(record, source=source, url=url)

    def _url(self, source: str, path: str, credentials: bool, call: CallOptions) -> str:
        url = local_url(self.config.url_prefix, path)
        if not (
            is_data_uri(source) or credentials or call.carries_credentials or self._profiled(source)
        ):
            url = with_provenance(url, source, self.config.add_url)
        return url

    def _profiled(self, source: str) -> bool:
        """Whether the source's host sends credentials: its provenance stays out of feeds."""
        if not self.config.host_profiles:
            return False
        try:
            host = urlsplit("https:" + source if source.startswith("//") else source).hostname
        except ValueError:
            return False
        profile = self.config.host_profiles.get(host or "")
        return profile is not None and profile.carries_credentials


_FIELDS = tuple(
    field.name
    for field in fields(MediaRecord)
    if field.name not in {"credentials", "thumbnails", "thumbnails_reason"}
)
