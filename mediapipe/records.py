"""The per-input result record (contract §2) and how it becomes a URL for ``images`` (§6)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import quote

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

    def as_dict(self) -> dict[str, Any]:
        # dataclasses.asdict deep-copies recursively; every field here is a plain value.
        return {name: getattr(self, name) for name in _FIELDS}


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


_FIELDS = tuple(field.name for field in fields(MediaRecord) if field.name != "credentials")
