"""What a store knows about a stored file, and what the pipeline tells it at commit."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True, slots=True)
class FileFacts:
    """What the pipeline knows about a validated body, handed to the store's commit."""

    mime: str | None
    width: int | None
    height: int | None
    credentials: bool
    etag: str | None = None
    last_modified: str | None = None

    def stored(self, path: str, size: int, sha256: str, stored_at: float) -> StoredFile:
        """The record of these facts' file, stored at ``path``."""
        return StoredFile(
            path=path.replace("\\", "/"),
            size=size,
            sha256=sha256,
            mime=self.mime,
            width=self.width,
            height=self.height,
            stored_at=stored_at,
            credentials=self.credentials,
            etag=self.etag,
            last_modified=self.last_modified,
        )


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One file in a store, as the reuse index remembers it."""

    path: str  # relative to the store root, "/"-separated
    size: int
    sha256: str
    mime: str | None
    width: int | None
    height: int | None
    stored_at: float
    # Whether credentials went with the download (contract §8). An entry written before this was
    # recorded counts as credentialed: provenance is left off rather than risk a leak.
    credentials: bool = True
    # The response's validators, sent back as If-None-Match / If-Modified-Since once the file
    # is older than MEDIAPIPE_EXPIRES.
    etag: str | None = None
    last_modified: str | None = None
    # What the store knows these bytes by (an object's ETag in a bucket): an entry that shares
    # another source's object is valid only while that object is still the same one.
    version: str | None = None
    # Set by a commit that found the same bytes already stored; not kept in the index.
    deduplicated: bool = field(default=False, compare=False)

    def kept(self) -> dict[str, Any]:
        """The fields an index keeps, by name: all but the commit's own ``deduplicated``."""
        return {name: getattr(self, name) for name in _TYPES}

    def refreshed(self, now: float) -> StoredFile:
        """The same file, its age starting again (a revalidation said it is unchanged)."""
        return replace(self, stored_at=now, deduplicated=False)


# The type each kept field must have; an entry that breaks them (a damaged database, a foreign
# writer) counts as absent: the source is downloaded again and its entry rewritten.
_TYPES: dict[str, tuple[type, ...]] = {
    "path": (str,),
    "size": (int,),
    "sha256": (str,),
    "mime": (str, type(None)),
    "width": (int, type(None)),
    "height": (int, type(None)),
    "stored_at": (int, float),
    "credentials": (bool, int),
    "etag": (str, type(None)),
    "last_modified": (str, type(None)),
    "version": (str, type(None)),
}


def entry_from(values: dict[str, Any]) -> StoredFile | None:
    """The entry these kept values describe, or None when any of them is of the wrong type."""
    known = {name: values[name] for name in _TYPES if name in values}
    for name in ("path", "size", "sha256", "stored_at"):
        if name not in known:
            return None
    for name, value in known.items():
        if not isinstance(value, _TYPES[name]) or (
            isinstance(value, bool) and name not in {"credentials"}
        ):
            return None
    known["credentials"] = bool(known.get("credentials", True))
    return StoredFile(**known)
