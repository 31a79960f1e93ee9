"""Regenerate ``docs/gallery.png``: the offline demo's gallery in headless Chromium.

    python docs/screenshot.py

Runs ``scrapy crawl demo`` and ``scrapy media-gallery`` in a temporary folder, opens the page
from its file at a desktop width, and saves the whole page as a 256-colour PNG. Needs the test
extra (selenium), Debian's ``chromium`` and ``chromium-driver``, and for the demo's Japanese
text and emoji, ``fonts-noto-cjk`` and ``fonts-noto-color-emoji``.
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PIL import Image  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402

from tests.browser import headless_chromium  # noqa: E402
from tests.test_gallery import crawl_demo, scrapy  # noqa: E402

OUTPUT = REPO / "docs" / "gallery.png"
WIDTH = 1100
COLOURS = 256


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mediapipe-screenshot-") as folder:
        demo = crawl_demo(Path(folder))
        done = scrapy(demo.folder, "media-gallery", "demo.jsonl", "-o", "gallery.html")
        if done.returncode != 0:
            sys.exit(done.stderr)
        png = capture((demo.folder / "gallery.html").as_uri())
    with Image.open(io.BytesIO(png)) as shot:
        small = shot.convert("RGB").quantize(COLOURS, method=Image.Quantize.MEDIANCUT)
        small.save(OUTPUT, optimize=True)
    print(f"Wrote {OUTPUT.relative_to(REPO)}: {OUTPUT.stat().st_size} bytes")


def capture(url: str) -> bytes:
    with headless_chromium((WIDTH, 900)) as browser:
        browser.get(url)
        height = int(browser.execute_script("return document.documentElement.scrollHeight"))
        # A viewport as tall as the page: every lazy image is in view and loads, and the
        # screenshot holds the whole page (a window cannot grow past the screen).
        browser.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        WebDriverWait(browser, 20).until(
            lambda driver: driver.execute_script(
                "return Array.from(document.images)"
                ".every(image => image.complete && image.naturalWidth > 0)"
            )
        )
        shot: bytes = browser.get_screenshot_as_png()
        return shot


if __name__ == "__main__":
    main()
