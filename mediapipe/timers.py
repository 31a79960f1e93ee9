"""Keeps the Twisted reactor's list of timers short during a crawl on the asyncio reactor.

Each media download schedules Twisted timers (its timeout, the kept connection's expiry) and
cancels most of them soon after. Twisted's asyncio reactor files new timers in a list that it
sorts, and drops the cancelled ones from, only when one of its timers fires; if all are far
off (a 180 s download timeout), none fires for minutes, and every timer of the crawl stays in
memory, cancelled or not: 25,000 after 30 s in the benchmark's long crawl, each one more object
for every full garbage collection to walk (collections of 100-150 ms, stalling the reactor).
A timer that fires every second lets the reactor file and drop them as it goes.
"""

from __future__ import annotations

from twisted.internet.task import LoopingCall

TICK_S = 1.0


def _tick() -> None:
    """Nothing to do: the reactor's own bookkeeping runs around each fired timer."""


class TimerTrim:
    """A Twisted timer firing every :data:`TICK_S` while the crawl runs."""

    def __init__(self) -> None:
        self._loop: LoopingCall | None = None

    def start(self) -> None:
        from scrapy.utils.reactor import is_reactor_installed

        if not is_reactor_installed() or self._loop is not None:
            return  # no Twisted reactor, no Twisted timers
        self._loop = LoopingCall(_tick)
        self._loop.start(TICK_S, now=False)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
