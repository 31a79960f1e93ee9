"""The gallery in a real headless Chromium: opened from its file and from ``scrapy media-serve``."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

import pytest
import pytest_twisted
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from tests import browser as chromium
from tests.browser import DESKTOP, PHONE
from tests.scripts import scrapy
from tests.test_gallery import DemoCrawl, crawl_demo, expected_totals
from tests.test_serve import start_serve

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from selenium.webdriver.chrome.webdriver import WebDriver

    from tests.conftest import Crawl
    from tests.mockserver import MockServer
    from tests.test_serve import Served

browser = chromium.browser  # the headless Chromium fixture of tests/browser.py

WAIT_SECONDS = 20
HAVE_METADATA = 1  # HTMLMediaElement.readyState


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoCrawl:
    return crawl_demo(tmp_path_factory.mktemp("browser-demo"))


@pytest.fixture(scope="module")
def gallery_url(demo: DemoCrawl) -> str:
    """The gallery written in a folder of its own, opened as a file."""
    done = scrapy(demo.folder, "media-gallery", "demo.jsonl", "-o", "pages/gallery.html")
    assert done.returncode == 0, done.stderr
    return (demo.folder / "pages" / "gallery.html").as_uri()


@pytest.fixture(scope="module")
def served(demo: DemoCrawl) -> Iterator[Served]:
    running = start_serve(demo.folder, "demo.jsonl", log=demo.folder / "serve.log")
    yield running
    assert running.stop() == (0, "Stopped\n")


@pytest.fixture(params=["file", "served"])
def page(
    request: pytest.FixtureRequest, browser: WebDriver, gallery_url: str, served: Served
) -> WebDriver:
    """The demo's gallery, loaded in the browser: from its file or from the server."""
    browser.set_window_size(*DESKTOP)
    browser.get(gallery_url if request.param == "file" else served.url)
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda driver: driver.execute_script("return document.readyState") == "complete"
    )
    browser.get_log("browser")  # what earlier pages logged
    return browser


def console_errors(browser: WebDriver) -> list[dict[str, Any]]:
    return [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def visible_statuses(browser: WebDriver) -> list[str]:
    return [
        tile.get_attribute("data-status") or ""
        for tile in browser.find_elements(By.CSS_SELECTOR, "figure.tile")
        if tile.is_displayed()
    ]


def test_every_image_and_player_loads(page: WebDriver) -> None:
    images = page.find_elements(By.CSS_SELECTOR, "figure.tile img")
    assert len(images) == 7
    for image in images:
        # The tiles' images load lazily: each one as it comes into view.
        page.execute_script("arguments[0].scrollIntoView()", image)
    WebDriverWait(page, WAIT_SECONDS).until(
        lambda driver: driver.execute_script(
            "return Array.from(document.querySelectorAll('figure.tile img'))"
            ".every(image => image.complete && image.naturalWidth > 0)"
        )
    )
    players = page.find_elements(By.CSS_SELECTOR, "figure.tile audio, figure.tile video")
    assert len(players) == 5
    WebDriverWait(page, WAIT_SECONDS).until(
        lambda driver: all(
            driver.execute_script("return arguments[0].readyState", player) >= HAVE_METADATA
            for player in players
        )
    )
    durations = [page.execute_script("return arguments[0].duration", p) for p in players]
    assert all(duration > 0 for duration in durations), durations
    assert console_errors(page) == []


def test_the_counts_are_the_feeds(page: WebDriver, demo: DemoCrawl) -> None:
    expected = expected_totals(demo.records(), len(demo.items()))
    shown = {
        cell.get_attribute("data-total"): int(cell.text)
        for cell in page.find_elements(By.CSS_SELECTOR, "dd[data-total]")
    }
    assert shown == expected
    assert page.find_element(By.ID, "shown").text == "15"
    assert len(visible_statuses(page)) == 15
    assert console_errors(page) == []


def test_the_filters_hide_what_they_should(page: WebDriver) -> None:
    def click(status: str) -> None:
        page.find_element(By.CSS_SELECTOR, f'button[data-filter-status="{status}"]').click()

    reason = Select(page.find_element(By.ID, "reason-filter"))
    click("failed")
    assert visible_statuses(page) == ["failed", "failed"]
    assert page.find_element(By.ID, "shown").text == "2"
    pressed = page.find_elements(By.CSS_SELECTOR, 'button[aria-pressed="true"]')
    assert [button.get_attribute("data-filter-status") for button in pressed] == ["failed"]
    reason.select_by_value("http-404")
    assert visible_statuses(page) == ["failed"]
    visible = [t for t in page.find_elements(By.CSS_SELECTOR, "figure.tile") if t.is_displayed()]
    assert visible[0].get_attribute("data-reason") == "http-404"
    click("")
    assert visible_statuses(page) == ["failed"]
    reason.select_by_value("")
    assert len(visible_statuses(page)) == 15
    click("data")
    assert visible_statuses(page) == ["data"]
    click("local")
    assert visible_statuses(page) == ["local"]
    click("downloaded")
    assert visible_statuses(page) == ["downloaded"] * 11
    assert page.find_element(By.ID, "shown").text == "11"
    click("")
    assert len(visible_statuses(page)) == 15
    assert console_errors(page) == []


@pytest.mark.parametrize(("size", "columns"), [(PHONE, 1), (DESKTOP, 5)])
def test_the_grid_fits_the_screen(page: WebDriver, size: tuple[int, int], columns: int) -> None:
    width, height = size
    # A phone's screen, as Chromium's device emulation gives it: the viewport meta applies.
    page.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 2, "mobile": width < 600},
    )
    try:
        assert page.execute_script("return window.innerWidth") == width
        assert page.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth"
        ), "the page scrolls sideways"
        template = page.execute_script(
            "return getComputedStyle(document.getElementById('grid')).gridTemplateColumns"
        )
        assert len(template.split()) == columns, template
    finally:
        page.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert console_errors(page) == []


def test_the_policy_runs_no_script_but_the_pages_own(
    browser: WebDriver, demo: DemoCrawl, gallery_url: str
) -> None:
    """Were markup from a feed ever to reach the page unescaped, it could not run."""
    page = demo.folder / "pages" / "gallery.html"
    tampered = page.with_name("tampered.html")
    injected = '<script>document.title = "ran";</script><img src=x onerror="document.title=1">'
    tampered.write_text(page.read_text("utf-8").replace("<main", injected + "<main", 1), "utf-8")
    browser.get(tampered.as_uri())
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda driver: driver.execute_script("return document.readyState") == "complete"
    )
    assert browser.title == "Media of demo.jsonl"
    # The page's own script still ran: the filters work.
    browser.find_element(By.CSS_SELECTOR, 'button[data-filter-status="failed"]').click()
    assert visible_statuses(browser) == ["failed", "failed"]
    refused = [
        e["message"] for e in console_errors(browser) if "Content Security Policy" in e["message"]
    ]
    assert len(refused) == 2, refused


HOSTILE_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8" '
    b'onload="document.title = \'onload ran\'"><script>document.title = "script ran"</script>'
    b'<rect width="8" height="8" fill="red"/></svg>'
)


@pytest_twisted.ensureDeferred
async def test_stored_files_open_on_their_own_and_run_no_script(
    crawl: Crawl, server: MockServer, browser: WebDriver, tmp_path: Path
) -> None:
    """A stored file opened from the server in a tab of its own: sound plays, and an SVG
    (stored as the crawled site gave it) runs none of its scripts under the gallery's origin."""
    svg = "data:image/svg+xml;base64," + base64.b64encode(HOSTILE_SVG).decode()
    feed = tmp_path / "feed.jsonl"
    result = await crawl(
        [{"images": [svg, f"{server.url}/audio/wav"]}],
        {"FEEDS": {str(feed): {"format": "jsonlines"}}},
    )
    svg_record, wav_record = result.items[0]["media"]
    assert (svg_record["mime"], wav_record["mime"]) == ("image/svg+xml", "audio/wav")
    running = start_serve(
        tmp_path, "feed.jsonl", "-s", "MEDIAPIPE_STORE=store", log=tmp_path / "log"
    )
    try:
        browser.get(running.url.rstrip("/") + wav_record["url"])
        WebDriverWait(browser, WAIT_SECONDS).until(
            lambda driver: driver.execute_script(
                "const player = document.querySelector('video, audio');"
                "return player !== null && player.readyState >= 1 && player.duration > 0"
            )
        )
        # The browser asks for /favicon.ico for a page of its own; the server has none.
        assert [e for e in console_errors(browser) if "/favicon.ico" not in e["message"]] == []
        browser.get(running.url.rstrip("/") + svg_record["url"])
        WebDriverWait(browser, WAIT_SECONDS).until(
            lambda driver: driver.execute_script("return document.readyState") == "complete"
        )
        assert browser.title == ""
        refused = [e for e in console_errors(browser) if "Content Security Policy" in e["message"]]
        assert len(refused) == 2, refused
    finally:
        assert running.stop() == (0, "Stopped\n")
