"""Whether a DEBUG line would be shown: only then is it built (its record costs per file)."""

from __future__ import annotations

import logging

import pytest

from mediapipe.loglines import debug_wanted


@pytest.fixture
def loggers() -> tuple[logging.Logger, logging.Logger]:
    # A tree of its own, outside logging's registry: pytest's capture handlers stay out of it.
    parent = logging.Logger("debugwanted", logging.DEBUG)
    child = logging.Logger("debugwanted.child")
    child.parent = parent
    parent.propagate = False
    return parent, child


def test_no_handler_below_info_wants_debug(loggers: tuple[logging.Logger, logging.Logger]) -> None:
    parent, child = loggers
    parent.addHandler(logging.NullHandler(logging.INFO))
    assert not debug_wanted(child)


def test_a_debug_handler_up_the_tree_wants_it(
    loggers: tuple[logging.Logger, logging.Logger],
) -> None:
    parent, child = loggers
    parent.addHandler(logging.NullHandler(logging.INFO))
    parent.addHandler(logging.NullHandler(logging.NOTSET))
    assert debug_wanted(child)
    child.propagate = False
    assert not debug_wanted(child)


def test_a_logger_above_debug_never_wants_it(
    loggers: tuple[logging.Logger, logging.Logger],
) -> None:
    parent, child = loggers
    parent.addHandler(logging.NullHandler(logging.DEBUG))
    child.setLevel(logging.INFO)
    assert not debug_wanted(child)
