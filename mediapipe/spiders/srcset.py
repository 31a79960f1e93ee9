"""The image candidates of an HTML ``srcset`` attribute, and the largest of them."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Candidate:
    """One image candidate of a ``srcset`` (or a ``src``, which counts as ``1x``)."""

    url: str
    width: int | None = None
    density: float = 1.0


# Neither w3lib, parsel nor Scrapy parses srcset, so this follows the HTML standard's algorithm:
# a URL runs to the next whitespace (so it may contain commas, as CDN URLs often do), and its
# descriptors run to the next comma outside parentheses.
_SRCSET_SEPARATORS = re.compile(r"[\s,]*")
_SRCSET_URL = re.compile(r"\S+")
# An unclosed parenthesis runs to the end, as the standard's tokenizer reads it.
_SRCSET_DESCRIPTORS = re.compile(r"(?:\([^)]*\)?|[^,(])*")
_WIDTH = re.compile(r"[0-9]+")
_DENSITY = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def srcset_candidates(srcset: str) -> list[Candidate]:
    """The valid candidates of a ``srcset``, in order; a candidate with a descriptor that is
    not a positive width (``300w``) or density (``2x``) is skipped."""
    candidates: list[Candidate] = []
    position = 0
    while True:
        position = _match(_SRCSET_SEPARATORS, srcset, position).end()
        if position >= len(srcset):
            return candidates
        url_match = _match(_SRCSET_URL, srcset, position)
        url, position = url_match.group(), url_match.end()
        descriptors = ""
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            descriptors_match = _match(_SRCSET_DESCRIPTORS, srcset, position)
            descriptors, position = descriptors_match.group(), descriptors_match.end()
        candidate = _candidate(url, descriptors.split())
        if candidate is not None:
            candidates.append(candidate)


def _match(pattern: re.Pattern[str], text: str, position: int) -> re.Match[str]:
    match = pattern.match(text, position)
    assert match is not None  # every pattern above matches the empty string or \S
    return match


def _candidate(url: str, descriptors: list[str]) -> Candidate | None:
    width: int | None = None
    density: float | None = None
    for descriptor in descriptors:
        number, unit = descriptor[:-1], descriptor[-1:]
        if unit == "w" and width is None and density is None and _WIDTH.fullmatch(number):
            width = int(number)
            if width == 0:
                return None
        elif unit == "x" and width is None and density is None and _DENSITY.fullmatch(number):
            density = float(number)
            if not (math.isfinite(density) and density > 0):
                return None
        elif unit == "h" and _WIDTH.fullmatch(number):
            continue  # a height hint: no bearing on which candidate is largest
        else:
            return None
    return Candidate(url, width, 1.0 if density is None else density)


def largest(candidates: list[Candidate]) -> Candidate | None:
    """The widest candidate by ``w`` descriptor, else the densest; the first of equals."""
    widths = [c for c in candidates if c.width is not None]
    if widths:
        return max(widths, key=lambda c: c.width or 0)
    if candidates:
        return max(candidates, key=lambda c: c.density)
    return None
