"""Per-call request options of :func:`mediapipe.copy_media`, handed to the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SPIDER_ATTRIBUTE = "mediapipe_call"


@dataclass(frozen=True, slots=True)
class CallOptions:
    """Request options that apply to every media request of one crawl.

    A spider may carry one as its ``mediapipe_call`` attribute; :func:`copy_media` does.
    """

    headers: dict[str, Any] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    proxy: str | None = None
    target: str | None = None

    @property
    def carries_credentials(self) -> bool:
        """Whether provenance must stay off the URL, so that secrets never reach a feed."""
        return bool(self.headers or self.cookies)
