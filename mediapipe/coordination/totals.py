"""Every worker's ``mediapipe/`` stats, added up in one redis hash, so that a crawl of many
workers reads as one: ``redis-cli hgetall <spider>:mediapipe:stats``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections import Counter


class SharedTotals:
    """Adds what this worker counted since its last addition (one transaction each time): a
    killed worker's last few seconds are missing from the totals."""

    def __init__(self, counts: Counter[str]) -> None:
        self._counts = counts
        self._added: dict[str, int] = {}

    async def add_to(self, client: Any, key: str) -> None:
        now = dict(self._counts)
        deltas = {name: count - self._added.get(name, 0) for name, count in now.items()}
        deltas = {name: delta for name, delta in deltas.items() if delta}
        if not deltas:
            return
        async with client.pipeline(transaction=True) as pipe:
            for name, delta in sorted(deltas.items()):
                pipe.hincrby(key, name, delta)
            await pipe.execute()
        self._added.update(now)
