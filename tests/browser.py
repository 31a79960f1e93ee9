"""A real headless browser for the gallery tests: Debian's ``chromium`` and ``chromium-driver``
(apt-get install chromium chromium-driver), driven by selenium.

It runs with a fresh profile, resolves no host name (pages come from ``file://`` and
127.0.0.1 only), keeps the browser's console messages for the tests to read, and quits at the
end. Test modules take its ``browser`` fixture (``browser = tests.browser.browser``);
``docs/screenshot.py`` uses :func:`headless_chromium`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

if TYPE_CHECKING:
    from collections.abc import Iterator

    from selenium.webdriver.chrome.webdriver import WebDriver

INSTALL_HINT = "apt-get install -y chromium chromium-driver"
DESKTOP = (1280, 900)
PHONE = (390, 844)

_FLAGS = (
    "--headless=new",
    "--disable-dev-shm-usage",  # containers give /dev/shm 64 MB
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--mute-audio",
    "--no-proxy-server",
    # Nothing but 127.0.0.1 resolves: the pages cannot reach anything off this machine.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)


def executables() -> tuple[str, str]:
    """The browser and its driver, or a failure that says how to install them."""
    browser = shutil.which("chromium")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.fail(f"the gallery's browser tests need Debian's chromium: {INSTALL_HINT}")
    return browser, driver


@contextlib.contextmanager
def headless_chromium(size: tuple[int, int] = DESKTOP) -> Iterator[WebDriver]:
    """A headless Chromium with a temporary profile, quit (and the profile removed) after."""
    browser, driver = executables()
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        options = Options()
        options.binary_location = browser
        for flag in _FLAGS:
            options.add_argument(flag)
        if os.geteuid() == 0:
            options.add_argument("--no-sandbox")  # Chromium's sandbox refuses to run as root
        options.add_argument(f"--user-data-dir={Path(profile)}")
        options.add_argument(f"--window-size={size[0]},{size[1]}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        # The driver listens on the loopback interface only, its default: no --allowed-ips.
        service = Service(executable_path=driver)
        chromium = webdriver.Chrome(options=options, service=service)
        try:
            yield chromium
        finally:
            chromium.quit()


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """One headless Chromium for a test module."""
    with headless_chromium() as chromium:
        yield chromium
