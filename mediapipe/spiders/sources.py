"""The media sources of an HTML page, in page order, as absolute URLs with their alt text.

One rule per kind of element; each takes the element and the page's base URL and returns what it
finds. :func:`page_sources` runs them over the page in document order and keeps the first
position of each URL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from parsel import Selector
from scrapy.utils.response import get_base_url
from w3lib.html import strip_html5_whitespace

from mediapipe.spiders.css import background_urls
from mediapipe.spiders.srcset import Candidate, largest, srcset_candidates

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from scrapy.http import TextResponse


@dataclass(frozen=True, slots=True)
class PageSource:
    """One media source of a page: an absolute ``http(s)://`` URL or a ``data:`` URI."""

    url: str
    alt: str | None = None


# Every element a rule reads; an XPath union returns them in document order.
_ELEMENTS = "//img | //picture | //video | //audio | //meta | //link | //script | //*[@style]"
_LAZY_SRC = ("data-src", "data-original")
_META_MEDIA = frozenset(
    {"og:image", "og:image:url", "og:image:secure_url", "og:video", "twitter:image"}
)
_JSON_LD_MEDIA = frozenset({"image", "contentUrl", "thumbnailUrl"})
# Deeper JSON-LD is not real markup; the bound keeps the walk far from the recursion limit.
_JSON_LD_MAX_DEPTH = 32
_FETCHABLE_SCHEMES = frozenset({"http", "https"})


def page_sources(response: TextResponse) -> list[PageSource]:
    """The sources of an HTML response, relative URLs resolved as ``response.urljoin`` does
    (``<base href>`` respected)."""
    return selector_sources(*parsed_page(response))


def parsed_page(response: TextResponse) -> tuple[Selector, str]:
    """The response's selector and base URL. A ``<base href>`` that is no URL at all (an
    unclosed IPv6 bracket) makes Scrapy fail to build either; the page is then parsed here, with
    its own URL as the base."""
    try:
        return response.selector, get_base_url(response)
    except ValueError:
        return Selector(text=response.text, type="html", base_url=response.url), response.url


def selector_sources(page: Selector, base_url: str) -> list[PageSource]:
    """The sources of a parsed page: one per image, picture, video/audio URL, meta, JSON-LD
    value, ``image_src`` link and CSS background URL, first position of each URL kept."""
    elements = page.xpath(_ELEMENTS)
    return deduplicated(source for e in elements for source in _element_sources(e, base_url))


def deduplicated(sources: Iterable[PageSource]) -> list[PageSource]:
    """One entry per URL at its first position; a later occurrence lends its alt text to an
    earlier one that had none (an ``og:image`` in the head, then the same image with its alt)."""
    kept: dict[str, PageSource] = {}
    for source in sources:
        first = kept.get(source.url)
        if first is None:
            kept[source.url] = source
        elif first.alt is None and source.alt is not None:
            kept[source.url] = PageSource(source.url, source.alt)
    return list(kept.values())


def _element_sources(element: Selector, base_url: str) -> list[PageSource]:
    rule = _RULES.get(str(element.root.tag).lower())
    sources = rule(element, base_url) if rule is not None else []
    if "style" in element.attrib:
        sources = [*sources, *background_sources(element, base_url)]
    return sources


# -- URLs -----------------------------------------------------------------------------------------


def absolute_url(raw: str | None, base_url: str) -> str | None:
    """``raw`` joined to the base, or None when it names nothing to fetch: empty, a fragment of
    the page, ``javascript:`` or another scheme than http(s); ``data:`` URIs are kept as is."""
    if raw is None:
        return None
    value = strip_html5_whitespace(raw)
    if not value or value.startswith("#"):
        return None
    if value[:5].lower() == "data:":
        return value
    try:
        joined = urljoin(base_url, value)
        scheme = urlsplit(joined).scheme
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None
    return joined if scheme in _FETCHABLE_SCHEMES else None


def _text(value: str | None) -> str | None:
    """Whitespace collapsed; None when nothing is left."""
    if value is None:
        return None
    return " ".join(value.split()) or None


def _sources(urls: Iterable[str | None], base_url: str, alt: str | None = None) -> list[PageSource]:
    return [PageSource(url, alt) for url in (absolute_url(raw, base_url) for raw in urls) if url]


def image_candidates(element: Selector, base_url: str) -> list[Candidate]:
    """The candidates of an ``img`` or ``source``, with absolute URLs. Lazy-loading attributes
    (``data-srcset``, ``data-src``, ``data-original``), when present, replace ``srcset`` and
    ``src``: until a script swaps them in, those hold a placeholder."""
    attrib = element.attrib
    lazy = _nonblank(attrib.get("data-srcset")) or any(
        _nonblank(attrib.get(name)) for name in _LAZY_SRC
    )
    srcset = attrib.get("data-srcset" if lazy else "srcset") or ""
    srcs = [attrib.get(name) for name in _LAZY_SRC] if lazy else [attrib.get("src")]
    candidates = [*srcset_candidates(srcset), *(Candidate(s) for s in srcs if s is not None)]
    resolved = []
    for candidate in candidates:
        url = absolute_url(candidate.url, base_url)
        if url is not None:
            resolved.append(Candidate(url, candidate.width, candidate.density))
    return resolved


def _nonblank(value: str | None) -> bool:
    return value is not None and bool(value.strip())


# -- the rules ------------------------------------------------------------------------------------


def image_alt(img: Selector) -> str | None:
    return _text(img.attrib.get("alt")) or _text(img.attrib.get("title"))


def img_sources(img: Selector, base_url: str) -> list[PageSource]:
    """One source: the largest candidate. An ``img`` of a ``picture`` belongs to the picture."""
    if img.xpath("ancestor::picture"):
        return []
    best = largest(image_candidates(img, base_url))
    return [] if best is None else [PageSource(best.url, image_alt(img))]


def picture_sources(picture: Selector, base_url: str) -> list[PageSource]:
    """One source for the whole picture: the largest of its ``source`` and ``img`` candidates,
    with the alt text of its ``img``."""
    candidates: list[Candidate] = []
    for child in picture.xpath(".//source | .//img"):
        candidates.extend(image_candidates(child, base_url))
    best = largest(candidates)
    if best is None:
        return []
    img = picture.xpath(".//img")
    return [PageSource(best.url, image_alt(img[0]) if img else None)]


def figure_caption(element: Selector) -> str | None:
    return _text(element.xpath("string(ancestor::figure[1]/figcaption)").get())


def _child_sources(media: Selector) -> list[str]:
    # Any depth: libxml2 does not know <source> as an empty element and nests each one in the
    # one before it.
    return media.xpath(".//source/@src").getall()


def video_sources(video: Selector, base_url: str) -> list[PageSource]:
    """``src``, each ``source[src]``, then the ``poster``; the figure caption as alt text."""
    urls = [video.attrib.get("src"), *_child_sources(video)]
    urls.append(video.attrib.get("poster"))
    return _sources(urls, base_url, figure_caption(video))


def audio_sources(audio: Selector, base_url: str) -> list[PageSource]:
    """``src``, then each ``source[src]``; the figure caption as alt text."""
    urls = [audio.attrib.get("src"), *_child_sources(audio)]
    return _sources(urls, base_url, figure_caption(audio))


def meta_sources(meta: Selector, base_url: str) -> list[PageSource]:
    """Open Graph and Twitter card images and videos, named by ``property`` or ``name``."""
    names = {(meta.attrib.get(key) or "").strip().lower() for key in ("property", "name")}
    if names.isdisjoint(_META_MEDIA):
        return []
    return _sources([meta.attrib.get("content")], base_url)


def link_sources(link: Selector, base_url: str) -> list[PageSource]:
    """``<link rel="image_src" href=…>``."""
    if "image_src" not in (link.attrib.get("rel") or "").lower().split():
        return []
    return _sources([link.attrib.get("href")], base_url)


def script_sources(script: Selector, base_url: str) -> list[PageSource]:
    """JSON-LD ``image``, ``contentUrl`` and ``thumbnailUrl`` values, at any depth. Text that
    is not JSON is skipped."""
    if (script.attrib.get("type") or "").strip().lower() != "application/ld+json":
        return []
    try:
        data = json.loads(script.xpath("string()").get(""), strict=False)
    except (ValueError, RecursionError):
        return []
    return _sources(json_ld_urls(data), base_url)


def json_ld_urls(node: Any, media: bool = False, depth: int = 0) -> Iterator[str]:
    """The strings under a media key (``image``, ``contentUrl``, ``thumbnailUrl``) in document
    order; under one, a dict's ``url`` is media too (an ``ImageObject``), elsewhere it is not
    (an ``Article``'s ``url`` is the page)."""
    if depth > _JSON_LD_MAX_DEPTH:
        return
    if isinstance(node, str):
        if media:
            yield node
    elif isinstance(node, list):
        for child in node:
            yield from json_ld_urls(child, media, depth + 1)
    elif isinstance(node, dict):
        for key, child in node.items():
            is_media = key in _JSON_LD_MEDIA or (media and key == "url")
            yield from json_ld_urls(child, is_media, depth + 1)


def background_sources(element: Selector, base_url: str) -> list[PageSource]:
    return _sources(background_urls(element.attrib.get("style") or ""), base_url)


_RULES: dict[str, Callable[[Selector, str], list[PageSource]]] = {
    "img": img_sources,
    "picture": picture_sources,
    "video": video_sources,
    "audio": audio_sources,
    "meta": meta_sources,
    "link": link_sources,
    "script": script_sources,
}
