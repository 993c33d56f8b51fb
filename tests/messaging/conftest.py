"""Fixtures of the messaging tests: the same tests run on the embedded broker and RabbitMQ."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from cryolive.messaging import Transport, open_transport


@pytest.fixture(params=["embedded", "rabbitmq"])
def broker_url(request: pytest.FixtureRequest) -> str:
    """Broker URL of each backend; RabbitMQ comes from the session fixture ``rabbitmq_url``."""
    if request.param == "embedded":
        return f"memory://test-{uuid.uuid4().hex[:8]}"
    return str(request.getfixturevalue("rabbitmq_url"))


@pytest.fixture
def queue_prefix() -> str:
    """A unique queue-name prefix per test, so tests never see each other's messages."""
    return f"test-{uuid.uuid4().hex[:10]}."


@pytest.fixture
def transport(broker_url: str, queue_prefix: str) -> Iterator[Transport]:
    """A transport on each backend (short delivery limit); its queues are deleted afterwards."""
    transport = open_transport(broker_url, prefix=queue_prefix, delivery_limit=2)
    yield transport
    transport.delete_declared()
    transport.close()


class KeyedResults:
    """What handlers did, keyed by the work's idempotency key (``Context.key``): the first value
    per key is kept and every later one counted, so a test sees a redelivery that took effect
    twice. Thread-safe, since workers run handlers on several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[str, Any]] = {}
        self.duplicates = 0

    def put(self, key: str, value: Mapping[str, Any]) -> None:
        with self._lock:
            if key in self._values:
                self.duplicates += 1
            else:
                self._values[key] = dict(value)

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            return self._values.get(key)

    def __len__(self) -> int:
        with self._lock:
            return len(self._values)

    def stored_keys(self) -> set[str]:
        with self._lock:
            return set(self._values)


@pytest.fixture
def keyed_results() -> Callable[[], KeyedResults]:
    """A maker of :class:`KeyedResults` (test modules cannot import from conftest)."""
    return KeyedResults
