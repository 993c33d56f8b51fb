"""The encoded per-movie series of recently asked-for collections, reused while unchanged.

A collection of 50,000 movies takes the database and the JSON encoder most of a second to
turn into a series; every user who opens its page asks for the same one. The cache keeps the
encoded response per (collection, motion program), keyed on :func:`cryolive.db.repo.series.
version` (the chosen programs and the newest row id of each table), so a request after a new
movie or result lands reads afresh. Entries also expire after ``max_age_s``, which bounds how
long an in-place update of an existing row can go unseen. In memory, per server process.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable


class SeriesCache:
    """At most ``entries`` encoded series, least recently used dropped first."""

    def __init__(self, *, entries: int = 16, max_age_s: float = 60.0) -> None:
        if entries < 1:
            raise ValueError(f"entries: must be >= 1, got {entries}")
        if max_age_s <= 0:
            raise ValueError(f"max_age_s: must be > 0, got {max_age_s}")
        self._entries = entries
        self._max_age_s = max_age_s
        self._items: OrderedDict[Hashable, tuple[Hashable, float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, version: Hashable, *, now: float | None = None) -> bytes | None:
        """The body stored for ``key`` at ``version``, if it is there and young enough."""
        now = time.monotonic() if now is None else now
        with self._lock:
            found = self._items.get(key)
            if found is None or found[0] != version or now - found[1] > self._max_age_s:
                return None
            self._items.move_to_end(key)
            return found[2]

    def put(
        self, key: Hashable, version: Hashable, body: bytes, *, now: float | None = None
    ) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._items[key] = (version, now, body)
            self._items.move_to_end(key)
            while len(self._items) > self._entries:
                self._items.popitem(last=False)
