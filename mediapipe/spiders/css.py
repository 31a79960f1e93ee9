"""The image URLs of an inline ``style`` attribute's background declarations."""

from __future__ import annotations

import re

# A hand-written scan, as no dependency parses CSS: url(...) tokens and quoted strings are taken
# whole, so a ";" inside a data URI does not end the declaration. An unquoted url() cannot hold
# parentheses, quotes or whitespace in CSS, which also keeps every match short.
_CSS_TOKEN = re.compile(
    r"""url\(\s*(?:"(?P<double>[^"]*)"|'(?P<single>[^']*)'|(?P<bare>[^()\s'"]*))\s*\)"""
    r"""|"[^"]*"|'[^']*'|(?P<end>;)""",
    re.IGNORECASE,
)
_BACKGROUND_PROPERTIES = frozenset({"background", "background-image"})


def background_urls(style: str) -> list[str]:
    """The ``url(...)`` values of the ``background`` and ``background-image`` declarations."""
    if "background" not in style.lower():
        return []
    urls: list[str] = []
    pending: list[str] = []
    start = 0
    for token in _CSS_TOKEN.finditer(style):
        if token["end"] is not None:
            if _is_background(style[start : token.start()]):
                urls.extend(pending)
            pending, start = [], token.end()
            continue
        value = token["double"] if token["double"] is not None else token["single"]
        if value is None:
            value = token["bare"]
        if value is not None:
            pending.append(value)
    if _is_background(style[start:]):
        urls.extend(pending)
    return urls


def _is_background(declaration: str) -> bool:
    return declaration.partition(":")[0].strip().lower() in _BACKGROUND_PROPERTIES
