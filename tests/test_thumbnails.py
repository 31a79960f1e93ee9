"""Thumbnails (``MEDIAPIPE_THUMBS``), the size minimums (``too-small``) and the Referer of
media requests, in real crawls against a loopback server and both kinds of store."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
import pytest_twisted
from PIL import Image
from scrapy.settings import Settings

from mediapipe.settings import MediaConfig, SettingError
from spiders.site_server import SiteHandler, SiteServer
from tests import media
from tests.mockserver import LAST_MODIFIED, LAST_MODIFIED_EPOCH

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tests.conftest import Crawl
    from tests.storeviews import StoreView

BOXES = {"small": [100, 100], "big": [400, 400]}


def jpeg(size: tuple[int, int], color: str = "blue", orientation: int | None = None) -> bytes:
    image = Image.new("RGB", size, color)
    # A marker in one corner: where it ends up shows that the orientation was applied.
    image.paste((255, 255, 0), (0, 0, size[0] // 4, size[1] // 4))
    out = io.BytesIO()
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    image.save(out, "JPEG", quality=95, exif=exif.tobytes())
    return out.getvalue()


def transparent_png(size: tuple[int, int]) -> bytes:
    image = Image.new("RGBA", size, (255, 0, 0, 255))
    image.paste((0, 0, 0, 0), (0, 0, size[0] // 2, size[1]))  # left half transparent
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (300, 200), color) for color in ("red", "blue", "green")]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


PHOTO = jpeg((800, 600))
# Stored 200 x 100, shown 100 x 200 (orientation 6: turn 90° clockwise).
TURNED = jpeg((200, 100), orientation=6)
ALPHA = transparent_png((300, 200))
ANIMATED = animated_gif()
# JPEG's signature, then nothing Pillow can decode: stored, but no thumbnail can be drawn.
BROKEN_JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8
TINY_PNG = media.PNG  # 8 x 6


def send(payload: bytes, content_type: str) -> Callable[[SiteHandler], None]:
    def route(handler: SiteHandler) -> None:
        handler.send_body(200, payload, content_type, {"Last-Modified": LAST_MODIFIED})

    return route


def recording(payload: bytes, content_type: str) -> Callable[[SiteHandler], None]:
    def route(handler: SiteHandler) -> None:
        handler.server.seen_headers.append(dict(handler.headers))  # type: ignore[attr-defined]
        handler.send_body(200, payload, content_type, {"Last-Modified": LAST_MODIFIED})

    return route


ROUTES = {
    "/photo.jpg": send(PHOTO, "image/jpeg"),
    "/turned.jpg": send(TURNED, "image/jpeg"),
    "/alpha.png": send(ALPHA, "image/png"),
    "/animated.gif": send(ANIMATED, "image/gif"),
    "/broken.jpg": send(BROKEN_JPEG, "image/jpeg"),
    "/tiny.png": send(TINY_PNG, "image/png"),
    "/logo.svg": send(media.SVG, "image/svg+xml"),
    "/sound.wav": send(media.WAV, "audio/wav"),
    "/echo.jpg": recording(PHOTO, "image/jpeg"),
}


@pytest.fixture
def site() -> Iterator[SiteServer]:
    server = SiteServer(routes=dict(ROUTES), last_modified=LAST_MODIFIED_EPOCH).start()
    server.httpd.seen_headers = []  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.stop()


def stem(source: str, label: str = "") -> str:
    import hashlib

    h16 = hashlib.sha256(source.encode()).hexdigest()[:16]
    return f"{LAST_MODIFIED_EPOCH}_{label + '_' if label else ''}{h16}"


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def pixel(image: Image.Image, x: int, y: int) -> tuple[int, ...]:
    value = image.getpixel((x, y))
    assert isinstance(value, tuple)
    return value


def thumbs_settings(store: StoreView | None = None, **extra: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {"MEDIAPIPE_THUMBS": BOXES, **extra}
    return store.settings(settings) if store is not None else settings


# -- thumbnails ---------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_each_box_gets_a_fitted_webp_in_the_store(
    crawl: Crawl, site: SiteServer, store: StoreView
) -> None:
    source = f"{site.url}/photo.jpg"
    result = await crawl([{"images": [source]}], thumbs_settings(store))
    record = result.items[0]["media"][0]
    name = stem(source)
    assert record["status"] == "downloaded"
    assert record["path"] == f"{name}.jpg"
    assert record["thumbnails"] == {
        "small": {
            "url": f"/thumbnail/small/{name}.webp",
            "path": f"thumbnails/small/{name}.webp",
            "width": 100,
            "height": 75,
        },
        "big": {
            "url": f"/thumbnail/big/{name}.webp",
            "path": f"thumbnails/big/{name}.webp",
            "width": 400,
            "height": 300,
        },
    }
    assert record["thumbnails_reason"] is None
    files = store.files()
    assert files[f"{name}.jpg"] == PHOTO
    assert sorted(files) == sorted(
        [f"{name}.jpg", f"thumbnails/small/{name}.webp", f"thumbnails/big/{name}.webp"]
    )
    for box, (width, height) in (("small", (100, 75)), ("big", (400, 300))):
        thumb = decoded(files[f"thumbnails/{box}/{name}.webp"])
        assert (thumb.format, thumb.size) == ("WEBP", (width, height))
        # The marker of the top-left corner is still there: the same picture, only smaller.
        assert pixel(thumb.convert("RGB"), 2, 2)[2] < 80
        assert pixel(thumb.convert("RGB"), width - 3, height - 3)[2] > 180
    if store.kind == "s3":
        assert store.content_type(f"thumbnails/small/{name}.webp") == "image/webp"
    assert result.stat("mediapipe/thumbnails/built") == 2
    assert result.stat("mediapipe/thumbnails/reused") == 0
    assert result.warnings == []


@pytest_twisted.ensureDeferred
async def test_a_later_run_reuses_them_and_builds_only_a_new_size(
    crawl: Crawl, site: SiteServer, store: StoreView
) -> None:
    source = f"{site.url}/photo.jpg"
    first = await crawl([{"images": [source]}], thumbs_settings(store))
    made = first.items[0]["media"][0]["thumbnails"]
    before = store.files()
    site.requested.clear()

    second = await crawl([{"images": [source]}], thumbs_settings(store))
    record = second.items[0]["media"][0]
    assert record["status"] == "uptodate"
    assert record["thumbnails"] == made
    assert second.stat("mediapipe/thumbnails/built") == 0
    assert second.stat("mediapipe/thumbnails/reused") == 2
    assert site.requested == []
    assert store.files() == before

    grown = {**BOXES, "tiny": [20, 20]}
    third = await crawl([{"images": [source]}], store.settings({"MEDIAPIPE_THUMBS": grown}))
    record = third.items[0]["media"][0]
    name = stem(source)
    assert record["thumbnails"]["tiny"] == {
        "url": f"/thumbnail/tiny/{name}.webp",
        "path": f"thumbnails/tiny/{name}.webp",
        "width": 20,
        "height": 15,
    }
    assert {k: v for k, v in record["thumbnails"].items() if k != "tiny"} == made
    assert third.stat("mediapipe/thumbnails/built") == 1
    assert third.stat("mediapipe/thumbnails/reused") == 2
    after = store.files()
    assert decoded(after[f"thumbnails/tiny/{name}.webp"]).size == (20, 15)
    assert {k: v for k, v in after.items() if "/tiny/" not in k} == before


@pytest_twisted.ensureDeferred
async def test_a_redownloaded_file_gets_new_thumbnails(crawl: Crawl, site: SiteServer) -> None:
    source = f"{site.url}/photo.jpg"
    await crawl([{"images": [source]}], thumbs_settings())
    name = stem(source)
    small = crawl.store / "thumbnails" / "small" / f"{name}.webp"
    small.write_bytes(b"stale bytes of an older file")
    # Expired: downloaded again, under the same name, so its thumbnails are drawn anew.
    result = await crawl([{"images": [source]}], thumbs_settings(MEDIAPIPE_EXPIRES=0))
    assert result.items[0]["media"][0]["status"] == "downloaded"
    assert decoded(small.read_bytes()).size == (100, 75)
    assert result.stat("mediapipe/thumbnails/built") == 2


@pytest_twisted.ensureDeferred
async def test_exif_orientation_is_applied(crawl: Crawl, site: SiteServer) -> None:
    source = f"{site.url}/turned.jpg"
    result = await crawl([{"images": [source]}], thumbs_settings())
    record = result.items[0]["media"][0]
    assert (record["width"], record["height"]) == (200, 100)  # the stored file, as it is
    assert (record["thumbnails"]["small"]["width"], record["thumbnails"]["small"]["height"]) == (
        50,
        100,
    )
    thumb = decoded((crawl.store / record["thumbnails"]["small"]["path"]).read_bytes())
    assert thumb.size == (50, 100)
    # Turned clockwise: the marker of the original's top-left corner is now top-right.
    rgb = thumb.convert("RGB")
    assert pixel(rgb, 46, 3)[2] < 80
    assert pixel(rgb, 3, 3)[2] > 180


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize(
    ("fmt", "pillow", "ext", "mode"),
    [
        ("webp", "WEBP", "webp", "RGBA"),
        ("png", "PNG", "png", "RGBA"),
        ("jpeg", "JPEG", "jpg", "RGB"),
    ],
)
async def test_transparency_is_kept_where_the_format_has_it(
    crawl: Crawl, site: SiteServer, fmt: str, pillow: str, ext: str, mode: str
) -> None:
    source = f"{site.url}/alpha.png"
    result = await crawl([{"images": [source]}], thumbs_settings(MEDIAPIPE_THUMBS_FORMAT=fmt))
    thumb_record = result.items[0]["media"][0]["thumbnails"]["small"]
    assert thumb_record["path"] == f"thumbnails/small/{stem(source)}.{ext}"
    assert (thumb_record["width"], thumb_record["height"]) == (100, 67)
    thumb = decoded((crawl.store / thumb_record["path"]).read_bytes())
    assert (thumb.format, thumb.mode, thumb.size) == (pillow, mode, (100, 67))
    if mode == "RGBA":
        assert pixel(thumb, 10, 30)[3] == 0
        assert pixel(thumb, 90, 30)[3] == 255
    else:  # no alpha in JPEG: the transparent half is white
        assert min(pixel(thumb, 10, 30)) > 240
    assert pixel(thumb.convert("RGB"), 90, 30)[0] > 200


@pytest_twisted.ensureDeferred
async def test_an_animation_gives_its_first_frame(crawl: Crawl, site: SiteServer) -> None:
    result = await crawl([{"images": [f"{site.url}/animated.gif"]}], thumbs_settings())
    thumb_record = result.items[0]["media"][0]["thumbnails"]["small"]
    thumb = decoded((crawl.store / thumb_record["path"]).read_bytes())
    assert thumb.size == (100, 67)
    assert getattr(thumb, "n_frames", 1) == 1
    red, green, blue = pixel(thumb.convert("RGB"), 50, 30)
    assert red > 200
    assert green < 60
    assert blue < 60


@pytest_twisted.ensureDeferred
async def test_an_image_too_small_for_a_box_is_not_enlarged(crawl: Crawl, site: SiteServer) -> None:
    result = await crawl([{"images": [f"{site.url}/tiny.png"]}], thumbs_settings())
    thumbs = result.items[0]["media"][0]["thumbnails"]
    assert {name: (t["width"], t["height"]) for name, t in thumbs.items()} == {
        "small": (8, 6),
        "big": (8, 6),
    }


@pytest_twisted.ensureDeferred
async def test_an_undecodable_image_keeps_its_file_and_says_why(
    crawl: Crawl, site: SiteServer
) -> None:
    source = f"{site.url}/broken.jpg"
    result = await crawl([{"images": [source, f"{site.url}/photo.jpg"]}], thumbs_settings())
    broken, photo = result.items[0]["media"]
    assert broken["status"] == "downloaded"
    assert (crawl.store / broken["path"]).read_bytes() == BROKEN_JPEG
    assert broken["thumbnails"] == {}
    assert broken["thumbnails_reason"] == "undecodable"
    assert result.items[0]["images"][0] == f"/media/{stem(source)}.jpg?url={quote(source, safe='')}"
    assert sorted(photo["thumbnails"]) == ["big", "small"]
    assert not (crawl.store / "thumbnails" / "small" / f"{stem(source)}.webp").exists()
    assert result.stat("mediapipe/thumbnails/failed/undecodable") == 1
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith("Media thumbnails not made (undecodable): ")
    assert source in result.warnings[0]


@pytest_twisted.ensureDeferred
async def test_records_that_are_not_raster_images_have_none(crawl: Crawl, site: SiteServer) -> None:
    sources = [f"{site.url}/logo.svg", f"{site.url}/sound.wav", f"{site.url}/missing", None]
    result = await crawl([{"images": sources}], thumbs_settings())
    records = result.items[0]["media"]
    assert [r["status"] for r in records] == ["downloaded", "downloaded", "failed", "local"]
    assert [(r["thumbnails"], r["thumbnails_reason"]) for r in records] == [({}, None)] * 4
    assert not (crawl.store / "thumbnails").exists()


@pytest_twisted.ensureDeferred
async def test_a_data_uri_image_gets_thumbnails(crawl: Crawl) -> None:
    import base64

    source = "data:image/jpeg;base64," + base64.b64encode(PHOTO).decode()
    result = await crawl([{"images": [source]}], thumbs_settings())
    record = result.items[0]["media"][0]
    assert record["status"] == "data"
    assert (record["thumbnails"]["big"]["width"], record["thumbnails"]["big"]["height"]) == (
        400,
        300,
    )


@pytest_twisted.ensureDeferred
async def test_without_the_setting_records_have_no_thumbnail_keys(
    crawl: Crawl, site: SiteServer
) -> None:
    result = await crawl([{"images": [f"{site.url}/photo.jpg"]}])
    record = result.items[0]["media"][0]
    assert "thumbnails" not in record
    assert "thumbnails_reason" not in record
    assert not (crawl.store / "thumbnails").exists()


@pytest_twisted.ensureDeferred
async def test_the_url_prefix_of_thumbnails_is_a_setting(crawl: Crawl, site: SiteServer) -> None:
    source = f"{site.url}/photo.jpg"
    result = await crawl(
        [{"images": [source]}],
        thumbs_settings(MEDIAPIPE_THUMBS_URL_PREFIX="https://cdn.example/t/"),
    )
    small = result.items[0]["media"][0]["thumbnails"]["small"]
    assert small["url"] == f"https://cdn.example/t/small/{stem(source)}.webp"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([100, 100], "MEDIAPIPE_THUMBS must be a dict"),
        ({"small": [100]}, "MEDIAPIPE_THUMBS['small'] must be [width, height]"),
        ({"small": [0, 100]}, "MEDIAPIPE_THUMBS['small'] must be [width, height]"),
        ({"small": ["100", 100]}, "MEDIAPIPE_THUMBS['small'] must be [width, height]"),
        ({"../up": [10, 10]}, "is not a thumbnail name"),
        ("{not json", "MEDIAPIPE_THUMBS must be a dict"),
    ],
)
def test_bad_thumbnail_settings_are_refused(value: Any, message: str) -> None:
    with pytest.raises(SettingError, match=message.replace("[", r"\[").replace("]", r"\]")):
        MediaConfig.from_settings(Settings({"MEDIAPIPE_THUMBS": value}))


def test_thumbnail_settings_from_the_command_line() -> None:
    config = MediaConfig.from_settings(
        Settings({"MEDIAPIPE_THUMBS": '{"small": [100, 80]}', "MEDIAPIPE_THUMBS_FORMAT": "JPG"})
    )
    assert [(box.name, box.width, box.height) for box in config.thumbs] == [("small", 100, 80)]
    assert config.thumbs_format == "jpeg"
    with pytest.raises(SettingError, match="MEDIAPIPE_THUMBS_FORMAT must be one of"):
        MediaConfig.from_settings(Settings({"MEDIAPIPE_THUMBS_FORMAT": "gif"}))


# -- minimum sizes --------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize(
    ("settings", "detail"),
    [
        (
            {"MEDIAPIPE_MIN_WIDTH": 9},
            "8x6 pixels, under MEDIAPIPE_MIN_WIDTH x MEDIAPIPE_MIN_HEIGHT = 9x0",
        ),
        (
            {"MEDIAPIPE_MIN_HEIGHT": 7},
            "8x6 pixels, under MEDIAPIPE_MIN_WIDTH x MEDIAPIPE_MIN_HEIGHT = 0x7",
        ),
        (
            {"MEDIAPIPE_MIN_SIZE": len(TINY_PNG) + 1},
            f"{len(TINY_PNG)} bytes, under MEDIAPIPE_MIN_SIZE",
        ),
    ],
)
async def test_smaller_media_fail_too_small_and_store_nothing(
    crawl: Crawl, site: SiteServer, store: StoreView, settings: dict[str, Any], detail: str
) -> None:
    small, large = f"{site.url}/tiny.png", f"{site.url}/photo.jpg"
    result = await crawl([{"images": [small, large]}], store.settings(settings))
    tiny, photo = result.items[0]["media"]
    assert (tiny["status"], tiny["reason"], tiny["path"]) == ("failed", "too-small", None)
    assert result.items[0]["images"][0] == small
    assert photo["status"] == "downloaded"
    assert sorted(store.files()) == [photo["path"]]
    assert store.leftovers() == []
    assert result.stat("mediapipe/failed/too-small") == 1
    assert len(result.warnings) == 1
    assert "too-small" in result.warnings[0]
    assert small in result.warnings[0]
    assert detail in result.warnings[0]


@pytest_twisted.ensureDeferred
async def test_a_minimum_size_applies_to_audio_too(crawl: Crawl, site: SiteServer) -> None:
    source = f"{site.url}/sound.wav"
    result = await crawl([{"images": [source]}], {"MEDIAPIPE_MIN_SIZE": len(media.WAV) + 1})
    assert result.items[0]["media"][0]["reason"] == "too-small"
    result = await crawl([{"images": [source]}], {"MEDIAPIPE_MIN_WIDTH": 10_000})
    assert result.items[0]["media"][0]["status"] == "downloaded"  # width is for images only


@pytest_twisted.ensureDeferred
async def test_a_stored_file_under_a_new_minimum_is_not_reused(
    crawl: Crawl, site: SiteServer
) -> None:
    source = f"{site.url}/tiny.png"
    first = await crawl([{"images": [source]}])
    assert first.items[0]["media"][0]["status"] == "downloaded"
    site.requested.clear()
    second = await crawl([{"images": [source]}], {"MEDIAPIPE_MIN_WIDTH": 100})
    assert second.items[0]["media"][0]["reason"] == "too-small"
    assert site.requested == ["/tiny.png"]


@pytest.mark.parametrize(
    "name", ["MEDIAPIPE_MIN_SIZE", "MEDIAPIPE_MIN_WIDTH", "MEDIAPIPE_MIN_HEIGHT"]
)
def test_bad_minimums_are_refused(name: str) -> None:
    with pytest.raises(SettingError, match=f"{name} must be an integer >= 0"):
        MediaConfig.from_settings(Settings({name: -1}))


# -- Referer ----------------------------------------------------------------------------------


def referers(site: SiteServer) -> list[str | None]:
    return [headers.get("Referer") for headers in site.httpd.seen_headers]  # type: ignore[attr-defined]


@pytest_twisted.ensureDeferred
async def test_media_requests_carry_the_items_page_as_referer(
    crawl: Crawl, site: SiteServer
) -> None:
    page = f"{site.url}/gallery/page.html?id=3"
    result = await crawl([{"images": [f"{site.url}/echo.jpg"], "page": page}])
    assert result.items[0]["media"][0]["status"] == "downloaded"
    assert referers(site) == [page]


@pytest_twisted.ensureDeferred
async def test_the_referer_field_and_policy_are_settings(crawl: Crawl, site: SiteServer) -> None:
    page = f"{site.url}/gallery/page.html"
    await crawl(
        [{"images": [f"{site.url}/echo.jpg"], "from": page}],
        {"MEDIAPIPE_REFERER_FIELD": "from"},
    )
    # Scrapy's REFERRER_POLICY decides what is sent: here only the origin.
    await crawl(
        [{"images": [f"{site.url}/echo.jpg?2"], "page": page}],
        {"REFERRER_POLICY": "origin"},
    )
    await crawl(
        [{"images": [f"{site.url}/echo.jpg?3"], "page": "https://elsewhere.example/page"}],
        {"REFERRER_POLICY": "same-origin"},
    )
    await crawl([{"images": [f"{site.url}/echo.jpg?4"], "page": page}], {"REFERER_ENABLED": False})
    await crawl([{"images": [f"{site.url}/echo.jpg?5"]}])
    await crawl(
        [{"images": [f"{site.url}/echo.jpg?6"], "page": page}], {"MEDIAPIPE_REFERER_FIELD": None}
    )
    assert referers(site) == [page, f"{site.url}/", None, None, None, None]


@pytest_twisted.ensureDeferred
async def test_a_spider_can_name_the_referer_of_all_its_items(
    crawl: Crawl, site: SiteServer
) -> None:
    from tests.conftest import ItemsSpider

    class GallerySpider(ItemsSpider):
        name = "gallery"
        media_referer = "http://gallery.example/"

    page = f"{site.url}/page.html"
    await crawl(
        [
            {"images": [f"{site.url}/echo.jpg"]},
            {"images": [f"{site.url}/echo.jpg?2"], "page": page},
        ],
        spider=GallerySpider,
    )
    assert sorted(referers(site), key=str) == sorted(["http://gallery.example/", page])


@pytest_twisted.ensureDeferred
async def test_a_referer_header_of_the_caller_wins(crawl: Crawl, site: SiteServer) -> None:
    from mediapipe.options import SPIDER_ATTRIBUTE, CallOptions
    from tests.conftest import ItemsSpider

    class Headed(ItemsSpider):
        name = "headed"

    setattr(Headed, SPIDER_ATTRIBUTE, CallOptions(headers={"Referer": "https://mine.example/"}))
    await crawl([{"images": [f"{site.url}/echo.jpg"], "page": f"{site.url}/p"}], spider=Headed)
    assert referers(site) == ["https://mine.example/"]
