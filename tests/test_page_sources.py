"""The media sources of a page (mediapipe.spiders.sources): each rule on small pages, then
malformed markup, which must never raise."""

from __future__ import annotations

import json
from html import escape

import pytest
from parsel import Selector
from scrapy.http import HtmlResponse

from mediapipe.spiders.sources import page_sources, selector_sources
from mediapipe.spiders.srcset import Candidate, largest, srcset_candidates

PAGE = "https://example.com/dir/page.html"
D = "https://example.com/dir/"
GIF_PLACEHOLDER = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"

Found = list[tuple[str, str | None]]


def found(html: str | bytes, url: str = PAGE, encoding: str = "utf-8") -> Found:
    body = html.encode(encoding) if isinstance(html, str) else html
    response = HtmlResponse(url, body=body, encoding=encoding)
    return [(source.url, source.alt) for source in page_sources(response)]


def urls(html: str | bytes) -> list[str]:
    return [url for url, _ in found(html)]


# -- img ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ('<img src="a.jpg">', [(D + "a.jpg", None)]),
        ('<img src="a.jpg" alt=" A  red\ncat ">', [(D + "a.jpg", "A red cat")]),
        ('<img src="a.jpg" title="Title">', [(D + "a.jpg", "Title")]),
        ('<img src="a.jpg" alt="Alt" title="Title">', [(D + "a.jpg", "Alt")]),
        ('<img src="a.jpg" alt="" title="Title">', [(D + "a.jpg", "Title")]),
        ('<img src="a.jpg" alt=" ">', [(D + "a.jpg", None)]),
        ('<img alt="no source">', []),
    ],
    ids=["src", "alt", "title", "alt-over-title", "empty-alt", "blank-alt", "no-src"],
)
def test_img_src_and_alt(html: str, expected: Found) -> None:
    assert found(html) == expected


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ('<img src="s.jpg" srcset="s.jpg 300w, l.jpg 1200w, m.jpg 600w">', "l.jpg"),
        ('<img srcset="a1.jpg 1x, a3.jpg 3x, a2.jpg 2x">', "a3.jpg"),
        ('<img src="s.jpg" srcset="h.jpg 1.5x">', "h.jpg"),
        ('<img src="s.jpg" srcset="h.jpg 0.5x">', "s.jpg"),
        ('<img src="s.jpg" srcset="d.jpg 3x, w.jpg 100w">', "w.jpg"),
        ('<img srcset="one.jpg 2x, two.jpg 2x">', "one.jpg"),
        ('<img src="src.jpg" srcset="set.jpg">', "set.jpg"),
        ('<img srcset="a.jpg 2x 300h, b.jpg 1x">', "a.jpg"),
        ('<img srcset="a.jpg 300w 200h, b.jpg 200w">', "a.jpg"),
        ('<img srcset="a.jpg,, b.jpg 2x">', "b.jpg"),
        ('<img srcset="a.jpg 2e1x, b.jpg 3x">', "a.jpg"),
    ],
    ids=[
        "widest",
        "densest",
        "src-is-1x",
        "src-beats-half",
        "w-before-x",
        "first-of-equals",
        "srcset-before-src",
        "height-ignored",
        "width-with-height",
        "trailing-comma",
        "exponent",
    ],
)
def test_img_takes_the_largest_candidate(html: str, expected: str) -> None:
    assert found(html.replace(">", ' alt="A">')) == [(D + expected, "A")]


def test_srcset_urls_may_contain_commas() -> None:
    html = (
        '<img srcset="https://cdn.example.com/w_100,h_50/a.jpg 100w,'
        ' https://cdn.example.com/w_800,h_400/a.jpg 800w">'
    )
    assert urls(html) == ["https://cdn.example.com/w_800,h_400/a.jpg"]
    assert urls('<img srcset="a.jpg,b.jpg 2x" src="c.jpg">') == [D + "a.jpg,b.jpg"]


def test_srcset_data_uri_candidates_keep_their_commas() -> None:
    assert urls(f'<img srcset="{GIF_PLACEHOLDER} 1x, big.png 2x">') == [D + "big.png"]
    assert urls(f'<img srcset="{GIF_PLACEHOLDER} 3x, big.png 2x">') == [GIF_PLACEHOLDER]


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        (f'<img src="{GIF_PLACEHOLDER}" data-src="real.jpg" alt="R">', "real.jpg"),
        ('<img src="spacer.gif" data-original="real.jpg" alt="R">', "real.jpg"),
        (
            '<img src="spacer.gif" srcset="spacer.gif 1x" data-srcset="r1.jpg 1x, r2.jpg 2x"'
            ' alt="R">',
            "r2.jpg",
        ),
        ('<img src="spacer.gif" data-src="r1.jpg" data-srcset="r3.jpg 3x" alt="R">', "r3.jpg"),
        ('<img src="real.jpg" data-src="  " alt="R">', "real.jpg"),
    ],
    ids=["data-src", "data-original", "data-srcset", "data-src-with-data-srcset", "blank-lazy"],
)
def test_lazy_loading_attributes_win_over_the_placeholder(html: str, expected: str) -> None:
    assert found(html) == [(D + expected, "R")]


def test_a_data_uri_src_without_lazy_attributes_is_kept_as_is() -> None:
    assert found(f'<img src=" {GIF_PLACEHOLDER}\n" alt="dot">') == [(GIF_PLACEHOLDER, "dot")]


# -- picture --------------------------------------------------------------------------------------


def test_picture_is_one_source_the_largest_of_all_its_candidates() -> None:
    html = """
    <picture>
      <source srcset="a.avif 800w" type="image/avif">
      <source srcset="a.webp 1600w, a-small.webp 400w" type="image/webp">
      <img src="a.jpg" srcset="a-400.jpg 400w" alt="Picture" title="ignored">
    </picture>
    <img src="after.jpg" alt="After">
    """
    assert found(html) == [(D + "a.webp", "Picture"), (D + "after.jpg", "After")]


def test_picture_by_density_counts_the_img_src_as_1x() -> None:
    html = '<picture><source srcset="p.webp"><img src="p.jpg" srcset="p2.jpg 2x"></picture>'
    assert found(html) == [(D + "p2.jpg", None)]
    html = '<picture><source srcset="p.webp"><img src="p.jpg" title="T"></picture>'
    assert found(html) == [(D + "p.webp", "T")]


def test_picture_lazy_sources() -> None:
    html = f"""
    <picture>
      <source srcset="{GIF_PLACEHOLDER}" data-srcset="big.webp 2x">
      <img src="{GIF_PLACEHOLDER}" data-src="small.jpg" alt="Lazy">
    </picture>
    """
    assert found(html) == [(D + "big.webp", "Lazy")]


def test_picture_without_img() -> None:
    assert found('<picture><source srcset="only.webp 2x"></picture>') == [(D + "only.webp", None)]
    assert found("<picture></picture>") == []


# -- video and audio ------------------------------------------------------------------------------


def test_video_src_sources_then_poster() -> None:
    html = """
    <video src="v.mp4" poster="poster.jpg">
      <source src="v.webm" type="video/webm"><source src="v.mp4"><source type="video/ogg">
    </video>
    """
    assert found(html) == [(D + "v.mp4", None), (D + "v.webm", None), (D + "poster.jpg", None)]


def test_audio_and_video_take_the_figure_caption_as_alt() -> None:
    html = """
    <figure><audio controls><source src="s.ogg"><source src="s.mp3"></audio>
      <figcaption> A  <b>chime</b> </figcaption></figure>
    <figure><video poster="p.jpg"></video></figure>
    <audio src="bare.wav"></audio>
    """
    assert found(html) == [
        (D + "s.ogg", "A chime"),
        (D + "s.mp3", "A chime"),
        (D + "p.jpg", None),
        (D + "bare.wav", None),
    ]


def test_an_img_in_a_figure_keeps_its_own_alt_only() -> None:
    html = '<figure><img src="a.jpg"><figcaption>Caption</figcaption></figure>'
    assert found(html) == [(D + "a.jpg", None)]


# -- meta, link, JSON-LD --------------------------------------------------------------------------


def test_meta_open_graph_and_twitter() -> None:
    html = """<head>
    <meta property="og:title" content="not media.jpg">
    <meta property="og:image" content="og.jpg">
    <meta property="og:image:url" content="og-url.jpg">
    <meta property="og:image:secure_url" content="https://secure.example.com/og.jpg">
    <meta property="OG:Video" content="/clip.mp4">
    <meta name="twitter:image" content="tw.jpg">
    <meta name="og:image" content="by-name.jpg">
    <meta name="description" content="words.jpg">
    <meta property="og:image">
    </head>"""
    assert urls(html) == [
        D + "og.jpg",
        D + "og-url.jpg",
        "https://secure.example.com/og.jpg",
        "https://example.com/clip.mp4",
        D + "tw.jpg",
        D + "by-name.jpg",
    ]


def test_link_image_src() -> None:
    html = """<head>
    <link rel="stylesheet" href="s.css"><link rel="icon" href="favicon.ico">
    <link rel="preload IMAGE_SRC" href="l.png"><link rel="image_src">
    </head>"""
    assert urls(html) == [D + "l.png"]


def ld(data: object) -> str:
    return f'<script type="application/ld+json">{json.dumps(data)}</script>'


def test_json_ld_strings_lists_objects_and_graph() -> None:
    html = ld(
        {
            "@context": "https://schema.org",
            "@graph": [
                {
                    "@type": "Article",
                    "url": "/article",
                    "image": ["a1.jpg", {"@type": "ImageObject", "url": "a2.jpg"}],
                    "author": {"@type": "Person", "url": "/me", "image": "me.jpg"},
                },
                {
                    "@type": "VideoObject",
                    "contentUrl": "v.mp4",
                    "thumbnailUrl": ["t1.jpg", "t2.jpg"],
                    "image": {"@type": "ImageObject", "contentUrl": "c.jpg", "caption": "x"},
                },
            ],
        }
    )
    assert found(html) == [
        (D + "a1.jpg", None),
        (D + "a2.jpg", None),
        (D + "me.jpg", None),
        (D + "v.mp4", None),
        (D + "t1.jpg", None),
        (D + "t2.jpg", None),
        (D + "c.jpg", None),
    ]


def test_json_ld_top_level_list_and_type_case() -> None:
    html = (
        '<script type=" Application/LD+JSON ">[{"image": "one.jpg"}, {"image": ["two.jpg"]}]'
        '</script><script type="application/json">{"image": "not-ld.jpg"}</script>'
        '<script>var x = {"image": "script.jpg"}</script>'
    )
    assert urls(html) == [D + "one.jpg", D + "two.jpg"]


def test_json_ld_non_string_values_are_skipped() -> None:
    html = ld({"image": [None, 3, True, {"url": 5}, {"url": "ok.jpg"}], "thumbnailUrl": {}})
    assert urls(html) == [D + "ok.jpg"]


# -- inline style ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("background: #fff url(a.png) no-repeat", ["a.png"]),
        ("background-image: url('b.png'), url( \"c.png\" )", ["b.png", "c.png"]),
        ("BACKGROUND-IMAGE: URL(d.png)", ["d.png"]),
        ("color: red; background-image: url(e.png); margin: 0", ["e.png"]),
        ("mask-image: url(m.png); list-style: url(l.png); background: none", []),
        ("background-image: url(data:image/png;base64,iVBO=); color: red", ["data:"]),
        ("background:url('a;b.png');background-image:url(f.png)", ["a;b.png", "f.png"]),
        ("background-image: url()", []),
        ("background-image: url(#frag)", []),
        ("--background: url(v.png); background-color: red", []),
        ("background-image: url(unclosed.png", []),
    ],
    ids=[
        "shorthand",
        "several-quoted",
        "upper-case",
        "among-others",
        "other-properties",
        "data-uri-with-semicolon",
        "quoted-semicolon",
        "empty",
        "fragment",
        "custom-property",
        "unclosed",
    ],
)
def test_inline_style_backgrounds(style: str, expected: list[str]) -> None:
    want = ["data:image/png;base64,iVBO=" if url == "data:" else D + url for url in expected]
    assert urls(f'<div style="{escape(style)}"></div>') == want


def test_an_img_with_a_background_gives_both_in_that_order() -> None:
    html = '<img src="fg.png" alt="F" style="background-image: url(bg.png)">'
    assert found(html) == [(D + "fg.png", "F"), (D + "bg.png", None)]


# -- URLs, order, duplicates ----------------------------------------------------------------------


def test_sources_come_in_page_order_across_rules() -> None:
    html = f"""<html><head>
      <meta property="og:image" content="/og.jpg">
      {ld({"image": "ld-head.jpg"})}
      <link rel="image_src" href="link.jpg">
    </head><body style="background: url(body.png)">
      <img src="one.jpg" alt="One">
      <video src="v.mp4"></video>
      <picture><img src="pic.jpg" alt="Pic"></picture>
      {ld({"thumbnailUrl": "ld-body.jpg"})}
      <div style="background-image: url(div.png)"><img src="two.jpg"></div>
      <audio src="a.mp3"></audio>
    </body></html>"""
    assert found(html) == [
        ("https://example.com/og.jpg", None),
        (D + "ld-head.jpg", None),
        (D + "link.jpg", None),
        (D + "body.png", None),
        (D + "one.jpg", "One"),
        (D + "v.mp4", None),
        (D + "pic.jpg", "Pic"),
        (D + "ld-body.jpg", None),
        (D + "div.png", None),
        (D + "two.jpg", None),
        (D + "a.mp3", None),
    ]


def test_duplicates_keep_the_first_position_and_the_first_alt() -> None:
    html = """<head><meta property="og:image" content="https://example.com/dir/cat.jpg"></head>
    <body>
      <img src="dog.jpg" alt="Dog">
      <img src="cat.jpg" alt="Cat">
      <img src="./cat.jpg" alt="Another cat">
      <img src="dog.jpg" alt="Dog again">
      <img src="../dir/dog.jpg">
    </body>"""
    assert found(html) == [(D + "cat.jpg", "Cat"), (D + "dog.jpg", "Dog")]


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("a.jpg", D + "a.jpg"),
        ("/root.jpg", "https://example.com/root.jpg"),
        ("../up.jpg", "https://example.com/up.jpg"),
        ("//cdn.example.net/c.jpg", "https://cdn.example.net/c.jpg"),
        ("http://other.example.org/o.jpg", "http://other.example.org/o.jpg"),
        ("\n\t  spaced.jpg \r\n", D + "spaced.jpg"),
        ("a.jpg?x=1#part", D + "a.jpg?x=1#part"),
        ("DATA:image/png;base64,AAAA", "DATA:image/png;base64,AAAA"),
        ("", None),
        ("   ", None),
        ("#fragment", None),
        ("javascript:void(0)", None),
        (" JavaScript:alert(1)", None),
        ("mailto:someone@example.com", None),
        ("blob:https://example.com/uuid", None),
        ("ftp://example.com/f.jpg", None),
        ("http://[broken/a.jpg", None),
    ],
)
def test_source_urls_are_absolute_or_skipped(src: str, expected: str | None) -> None:
    assert urls(f'<img src="{src}">') == ([] if expected is None else [expected])


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("https://static.example.org/assets/", "https://static.example.org/assets/a.jpg"),
        ("/other/", "https://example.com/other/a.jpg"),
        ("  ../  ", "https://example.com/a.jpg"),
        ("http://[broken/", D + "a.jpg"),
    ],
)
def test_base_href_is_respected(base: str, expected: str) -> None:
    html = f'<html><head><base href="{base}"></head><body><img src="a.jpg"></body></html>'
    assert urls(html) == [expected]


def test_selector_sources_take_the_base_url_given() -> None:
    page = Selector(text='<img src="a.jpg" alt="A"><meta property="og:image" content="b.jpg">')
    assert [(s.url, s.alt) for s in selector_sources(page, "http://site.test/x/")] == [
        ("http://site.test/x/a.jpg", "A"),
        ("http://site.test/x/b.jpg", None),
    ]


# -- srcset parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("srcset", "expected"),
    [
        ("a.jpg", [Candidate("a.jpg")]),
        ("a.jpg 100w, b.jpg 2x", [Candidate("a.jpg", 100), Candidate("b.jpg", None, 2.0)]),
        ("  a.jpg  ,  b.jpg  ", [Candidate("a.jpg"), Candidate("b.jpg")]),
        ("a.jpg 2q, , b.jpg", [Candidate("b.jpg")]),
        ("a.jpg 0w, b.jpg 0x, c.jpg -1x, d.jpg 1.5w, e.jpg infx", []),
        ("a.jpg 1x 2x, b.jpg 100w 2x, c.jpg 100w 200w, d.jpg 3x", [Candidate("d.jpg", None, 3.0)]),
        ("a.jpg 1e999x, b.jpg 2X, c.jpg 100W", []),
        ("a.jpg (foo, b.jpg 2x", []),
        ("a.jpg 2x (future), b.jpg", [Candidate("b.jpg")]),
        (",,, ,", []),
        ("", []),
        ("(((", [Candidate("(((")]),
    ],
)
def test_srcset_candidates(srcset: str, expected: list[Candidate]) -> None:
    assert srcset_candidates(srcset) == expected


def test_largest_of_nothing_is_none() -> None:
    assert largest([]) is None


# -- malformed pages ------------------------------------------------------------------------------


def test_unclosed_tags_and_stray_markup() -> None:
    html = """<html><body><div><p>text
      <img src="a.jpg" alt="A"
      <img src="b.jpg" alt="B">
      <picture><source srcset="p.webp 2x"><img src="p.jpg" alt="P">
      <video src="v.mp4"><source src="v.webm">
      </table></span><img src='c.jpg' alt=C><img src=d.jpg alt=D"""
    # The unclosed tag before b.jpg's swallows it; c.jpg and d.jpg are inside the unclosed
    # picture, whose largest candidate is p.webp.
    assert found(html) == [
        (D + "a.jpg", "A"),
        (D + "p.webp", "P"),
        (D + "v.mp4", None),
        (D + "v.webm", None),
    ]


def test_broken_srcset_and_json_ld_parts_are_skipped() -> None:
    html = (
        '<img srcset="a.jpg 2q, , b.jpg" src="c.jpg" alt="A">'
        '<img srcset=", ,a.jpg (( 3x" alt="Nothing">'
        '<script type="application/ld+json">{"image": "broken.jpg",</script>'
        '<script type="application/ld+json"><!-- {"image": "commented.jpg"} --></script>'
        f'<script type="application/ld+json">{"[" * 100_000}</script>'
        '<script type="application/ld+json">{"image": "good.jpg"}</script>'
    )
    assert found(html) == [(D + "b.jpg", "A"), (D + "good.jpg", None)]


def test_json_ld_deep_nesting_is_bounded() -> None:
    shallow: object = {"image": "shallow.jpg"}
    for _ in range(10):
        shallow = {"nested": [shallow]}
    deep: object = {"image": "deep.jpg"}
    for _ in range(200):
        deep = {"nested": deep}
    assert urls(ld(shallow) + ld(deep)) == [D + "shallow.jpg"]


def test_huge_attributes() -> None:
    big_data_uri = "data:image/png;base64," + "A" * 2_000_000
    html = (
        f'<img src="{big_data_uri}" alt="{"x" * 100_000}">'
        f'<img srcset="{", " * 500_000}big.jpg 2x">'
        f'<div style="{"url(" * 200_000}"></div>'
        f'<div style="background: {"url(a" * 200_000}"></div>'
        f'<div style="background-image: url({"b" * 1_000_000}.png)"></div>'
    )
    assert found(html) == [
        (big_data_uri, "x" * 100_000),
        (D + "big.jpg", None),
        (D + "b" * 1_000_000 + ".png", None),
    ]


def test_bytes_that_are_not_utf8() -> None:
    body = b'<html><body><img src="caf\xe9.jpg" alt="caf\xe9 \xff"><img src="ok.jpg"></body></html>'
    assert found(body) == [(D + "caf\ufffd.jpg", "caf\ufffd \ufffd"), (D + "ok.jpg", None)]


def test_a_declared_legacy_charset_is_decoded() -> None:
    body = b'<html><head><meta charset="iso-8859-1"></head><img src="caf\xe9.jpg" alt="caf\xe9">'
    response = HtmlResponse(PAGE, body=body)
    assert [(s.url, s.alt) for s in page_sources(response)] == [(D + "café.jpg", "café")]


@pytest.mark.parametrize("body", [b"", b"   ", b"\x00\x01\x02", b"<", b"<!--", b"<html"])
def test_empty_or_garbage_pages_have_no_sources(body: bytes) -> None:
    assert found(body) == []
