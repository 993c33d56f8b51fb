"""Results recorded once per idempotency key, however often the work is delivered."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Protocol


class ResultSink(Protocol):
    """Where a handler's effect lands, keyed by the work's idempotency key (``Context.key``).

    The database writer implements this as an upsert on the key; a redelivered message then
    finds its result already there and has no second effect.
    """

    def put(self, key: str, value: Mapping[str, Any]) -> bool:
        """Record ``value`` under ``key`` unless a value is there; True if this call stored it."""
        ...


class InMemoryResultSink:
    """A thread-safe :class:`ResultSink` in a dict (embedded deployments and tests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[str, Any]] = {}
        self.duplicates = 0

    def put(self, key: str, value: Mapping[str, Any]) -> bool:
        if not key:
            raise ValueError("key: must not be empty")
        with self._lock:
            if key in self._values:
                self.duplicates += 1
                return False
            self._values[key] = dict(value)
            return True

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            return self._values.get(key)

    def __len__(self) -> int:
        with self._lock:
            return len(self._values)

    def stored_keys(self) -> set[str]:
        with self._lock:
            return set(self._values)
