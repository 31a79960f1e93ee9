"""Where the gallery page links the store's files: relative to the page, under a base URL, or
at the feed's own URLs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    from pathlib import Path

# Unreserved characters and "/": "+" is encoded too, since S3 reads a "+" in a path as a space.
_PATH_SAFE = "/-._~"


class Links(Protocol):
    """Where the page finds a file of the store."""

    def href(self, path: str, url: str | None) -> str:
        """The URL of ``path`` (relative to the store); ``url`` is the feed's URL for it."""
        ...


@dataclass(frozen=True, slots=True)
class RelativeLinks:
    """Relative URLs from the gallery file's folder to a local store's files."""

    store: Path
    page_folder: Path

    def href(self, path: str, url: str | None) -> str:
        target = self.store / path
        try:
            relative = os.path.relpath(target, self.page_folder)
        except ValueError:  # another drive, on Windows
            return target.resolve().as_uri()
        return quote(relative.replace(os.sep, "/"), safe=_PATH_SAFE)


@dataclass(frozen=True, slots=True)
class BaseLinks:
    """URLs under the address that serves the store's root (a bucket's, a site's)."""

    base: str

    def href(self, path: str, url: str | None) -> str:
        return self.base.rstrip("/") + "/" + quote(path, safe=_PATH_SAFE)


@dataclass(frozen=True, slots=True)
class FeedLinks:
    """The feed's own URLs, for a server that answers them; ``prefix`` + path where the feed
    has none that is safe to put in a link."""

    prefix: str

    def href(self, path: str, url: str | None) -> str:
        if url is not None and is_web_url(url):
            return url
        return self.prefix + quote(path, safe=_PATH_SAFE)


def is_web_url(url: str) -> bool:
    """An http(s) URL or a path on this host: nothing a link could run (``javascript:``)."""
    if url.startswith("/"):
        # "//host" and "/\host" lead to another host.
        return not url.startswith(("//", "/\\"))
    try:
        return urlsplit(url).scheme in {"http", "https"}
    except ValueError:
        return False
