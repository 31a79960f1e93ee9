"""MEDIAPIPE_FREEZE_GC: a crawl moves the heap it starts with out of the collector's reach;
``copy_media`` calls, which a program may make again and again, never do."""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

import pytest
import pytest_twisted
from scrapy.utils.defer import deferred_from_coro

from mediapipe import copy_media
from tests import media
from tests.storecheck import stored_files

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.conftest import Crawl
    from tests.mockserver import MockServer


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the suite runs with the collector as usual


@pytest_twisted.ensureDeferred
async def test_a_crawl_freezes_its_start_up_heap(crawl: Crawl, server: MockServer) -> None:
    result = await crawl([{"images": [f"{server.url}/img/png"]}])
    assert gc.get_freeze_count() > 10_000  # Scrapy, Twisted and the project, at least
    record = result.items[0]["media"][0]
    assert stored_files(result.store) == {record["path"]: media.PNG}


@pytest_twisted.ensureDeferred
async def test_the_setting_turns_it_off(crawl: Crawl, server: MockServer) -> None:
    result = await crawl([{"images": [f"{server.url}/img/png"]}], {"MEDIAPIPE_FREEZE_GC": False})
    assert gc.get_freeze_count() == 0
    assert result.items[0]["media"][0]["status"] == "downloaded"


@pytest_twisted.ensureDeferred
async def test_copy_media_never_freezes(tmp_path: Path, server: MockServer) -> None:
    result = await deferred_from_coro(
        copy_media(
            [f"{server.url}/img/gif"],
            media_dir=tmp_path / "store",
            settings={"MEDIAPIPE_ALLOW_PRIVATE_NETWORKS": True},
        )
    )
    assert gc.get_freeze_count() == 0
    assert list(stored_files(tmp_path / "store").values()) == [media.GIF]
    assert len(result) == 1
