"""The gallery page: one self-contained HTML file of a feed's entries.

Everything from the feed is escaped; the page's one script and one style sheet are inline, and
its Content-Security-Policy lets only those two run, so markup that slipped through anyway
could not execute.
"""

from __future__ import annotations

import base64
import hashlib
from collections import defaultdict
from html import escape
from importlib.resources import files
from typing import TYPE_CHECKING

from mediapipe.gallery.feed import STATUSES, totals
from mediapipe.gallery.links import is_web_url

if TYPE_CHECKING:
    from mediapipe.gallery.feed import Entry, Feed, Thumbnail, Totals
    from mediapipe.gallery.links import Links

# Smallest thumbnail width that still fills a grid cell on a wide screen.
GRID_WIDTH = 300
# Image types every current browser draws in an <img>; others show their thumbnail or a link.
DRAWN_IMAGE_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/apng",
        "image/gif",
        "image/webp",
        "image/avif",
        "image/bmp",
        "image/x-icon",
        "image/vnd.microsoft.icon",
        "image/svg+xml",
    }
)
_SHOWN_SOURCE = 120  # characters of a long source shown on the page
_UNITS = ("B", "kB", "MB", "GB", "TB")  # of 1000, as the crawl's log counts them


def render_gallery(feed: Feed, links: Links, *, title: str, store: str) -> str:
    """The whole HTML page."""
    style = _asset("gallery.css")
    script = _asset("gallery.js")
    counted = totals(feed)
    policy = (
        "default-src 'none'; img-src * data: blob: file:; media-src * data: blob: file:; "
        f"style-src '{_digest(style)}'; script-src '{_digest(script)}'; "
        "base-uri 'none'; form-action 'none'"
    )
    body = "\n".join(
        [
            _header(feed, counted, title, store),
            _filters(counted),
            '<main class="grid" id="grid">',
            *(_tile(number, entry, links) for number, entry in enumerate(feed.entries)),
            "</main>",
            _failed_table(feed),
        ]
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{policy}">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>{escape(title)}</title>
<style>{style}</style>
</head>
<body>
{body}
<script>{script}</script>
</body>
</html>
"""


def _asset(name: str) -> str:
    return files("mediapipe.gallery").joinpath(name).read_text("utf-8")


def _digest(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()


def _header(feed: Feed, counted: Totals, title: str, store: str) -> str:
    rows = [
        ("items", "Items", str(counted.items)),
        ("sources", "Sources", str(counted.sources)),
        *((f"status/{s}", s, str(n)) for s, n in counted.by_status.items()),
        *((f"reason/{r}", r, str(n)) for r, n in counted.by_reason.items()),
        ("stored-files", "Files stored", str(counted.stored_files)),
        ("stored-bytes", "Bytes stored", str(counted.stored_bytes)),
    ]
    cells = "".join(
        f'<div><dt>{escape(label)}</dt><dd data-total="{escape(key)}">{value}</dd></div>'
        for key, label, value in rows
    )
    skipped = ""
    if feed.skipped:
        described = "; ".join(f"{n} {why}" for why, n in feed.skipped.items())
        skipped = (
            f'<p class="skipped" data-skipped="{feed.skipped.total()}">'
            f"Skipped: {escape(described)}</p>"
        )
    return (
        f"<header><h1>{escape(title)}</h1>"
        f'<p class="origin">{escape(feed.path.name)} · store {escape(store)} · '
        f"{_human_bytes(counted.stored_bytes)} stored</p>"
        f'<dl class="totals">{cells}</dl>{skipped}</header>'
    )


def _filters(counted: Totals) -> str:
    buttons = [f'<button type="button" data-filter-status="">all {counted.sources}</button>']
    buttons += [
        f'<button type="button" data-filter-status="{s}">{s} {counted.by_status[s]}</button>'
        for s in STATUSES
        if s in counted.by_status
    ]
    options = ['<option value="">any reason</option>']
    options += [
        f'<option value="{escape(reason)}">{escape(reason)} ({n})</option>'
        for reason, n in counted.by_reason.items()
    ]
    return (
        '<nav class="filters" aria-label="Filters">'
        f'<div class="statuses" role="group" aria-label="Status">{"".join(buttons)}</div>'
        f'<label>Reason <select id="reason-filter">{"".join(options)}</select></label>'
        f'<p class="shown"><span id="shown">{counted.sources}</span> of {counted.sources} '
        "shown</p></nav>"
    )


def _tile(number: int, entry: Entry, links: Links) -> str:
    return (
        f'<figure class="tile" id="tile-{number}" data-status="{entry.status}" '
        f'data-reason="{escape(entry.reason or "")}" data-kind="{_kind(entry)}">'
        f"{_preview(entry, links)}<figcaption>{_caption(entry, links)}</figcaption></figure>"
    )


def _kind(entry: Entry) -> str:
    major = (entry.mime or "").partition("/")[0]
    if entry.path is None or major not in {"image", "audio", "video"}:
        return "none" if entry.path is None else "file"
    return major


def _preview(entry: Entry, links: Links) -> str:
    if entry.path is None:
        what = "kept as a local path" if entry.status == "local" else entry.reason or "failed"
        return f'<div class="placeholder">{escape(what)}</div>'
    original = escape(links.href(entry.path, entry.url))
    thumbnail = grid_thumbnail(entry.thumbnails)
    kind = _kind(entry)
    if kind == "audio":
        return f'<audio controls preload="metadata" src="{original}"></audio>'
    if kind == "video":
        poster = ""
        if thumbnail is not None:
            poster = f' poster="{escape(links.href(thumbnail.path, thumbnail.url))}"'
        return f'<video controls preload="metadata" src="{original}"{poster}></video>'
    if thumbnail is not None:
        shown, width, height = (
            links.href(thumbnail.path, thumbnail.url),
            thumbnail.width,
            thumbnail.height,
        )
    elif kind == "image" and entry.mime in DRAWN_IMAGE_TYPES:
        shown, width, height = links.href(entry.path, entry.url), entry.width, entry.height
    else:
        return f'<a class="placeholder" href="{original}">open {escape(entry.mime or "file")}</a>'
    size = f' width="{width}" height="{height}"' if width and height else ""
    return (
        f'<a class="media" href="{original}"><img src="{escape(shown)}" '
        f'alt="{escape(entry.alt)}"{size} loading="lazy" decoding="async"></a>'
    )


def grid_thumbnail(thumbnails: tuple[Thumbnail, ...]) -> Thumbnail | None:
    """The narrowest thumbnail that fills a grid cell, else the widest there is."""
    for thumbnail in thumbnails:
        if (thumbnail.width or 0) >= GRID_WIDTH:
            return thumbnail
    return thumbnails[-1] if thumbnails else None


def _caption(entry: Entry, links: Links) -> str:
    parts = []
    if entry.alt:
        parts.append(f'<p class="alt">{escape(entry.alt)}</p>')
    if entry.tags:
        tags = "".join(f"<li>{escape(tag)}</li>" for tag in entry.tags)
        parts.append(f'<ul class="tags">{tags}</ul>')
    facts = [f'<span class="status status-{entry.status}">{entry.status}</span>']
    if entry.reason:
        facts.append(f'<span class="reason">{escape(entry.reason)}</span>')
    if entry.mime:
        facts.append(escape(entry.mime))
    if entry.width and entry.height:
        facts.append(f"{entry.width}×{entry.height}")
    if entry.size is not None:
        facts.append(_human_bytes(entry.size))
    parts.append(f'<p class="facts">{" · ".join(facts)}</p>')
    if entry.path is not None and not entry.thumbnails and entry.thumbnails_reason:
        parts.append(f'<p class="note">no thumbnail: {escape(entry.thumbnails_reason)}</p>')
    if entry.path is None:
        parts.append(f'<p class="source">{_source_link(entry.source)}</p>')
    if entry.page and is_web_url(entry.page):
        parts.append(
            f'<p class="page"><a href="{escape(entry.page)}" rel="noopener noreferrer">page</a></p>'
        )
    return "".join(parts)


def _source_link(source: str) -> str:
    shown = escape(_shortened(source)) or "(none)"
    if source.startswith(("http://", "https://")) and is_web_url(source):
        return f'<a href="{escape(source)}" rel="noopener noreferrer">{shown}</a>'
    return f"<code>{shown}</code>"


def _shortened(source: str) -> str:
    if source[:5].lower() == "data:":
        head = source.partition(",")[0]
        return f"{head[:_SHOWN_SOURCE]},… ({len(source)} characters)"
    if len(source) > _SHOWN_SOURCE:
        return source[: _SHOWN_SOURCE - 1] + "…"
    return source


def _failed_table(feed: Feed) -> str:
    tiles: dict[tuple[str, str], list[int]] = defaultdict(list)
    for number, entry in enumerate(feed.entries):
        if entry.status == "failed":
            tiles[entry.source, entry.reason or ""].append(number)
    if not tiles:
        return '<section class="failures"><h2>Failed sources</h2><p>None.</p></section>'
    rows = "".join(
        f'<tr><td class="source">{_source_link(source)}</td>'
        f'<td class="reason">{escape(reason)}</td><td class="items">'
        + " ".join(f'<a href="#tile-{n}">#{feed.entries[n].item}</a>' for n in numbers)
        + "</td></tr>"
        for (source, reason), numbers in sorted(tiles.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    )
    return (
        '<section class="failures"><h2>Failed sources</h2><div class="scroll">'
        '<table class="failed"><thead><tr><th scope="col">Source</th>'
        '<th scope="col">Reason</th><th scope="col">Item</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div></section>"
    )


def _human_bytes(size: int) -> str:
    value, unit = float(size), 0
    while value >= 1000 and unit < len(_UNITS) - 1:
        value, unit = value / 1000, unit + 1
    return f"{size} B" if unit == 0 else f"{value:.1f} {_UNITS[unit]}"
