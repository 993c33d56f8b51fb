"""Fixtures of the messaging tests: the same tests run on the embedded broker and RabbitMQ."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

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
