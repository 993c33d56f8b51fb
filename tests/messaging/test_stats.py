"""Queue statistics (ready messages, consumers) and discarding one dead letter, on both
backends: what the staff area of the web application shows and does."""

from __future__ import annotations

import threading
import time

import pytest

from cryolive.messaging import Transport, dlq
from cryolive.messaging.envelope import Envelope
from cryolive.messaging.transport import Delivery, QueueStats, dlq_name


def _envelope(key: str) -> bytes:
    return Envelope.model_validate(
        {
            "key": key,
            "recipe": {"name": "r", "start": ["a"], "steps": {"a": {"service": "s", "queue": "q"}}},
            "step": "a",
            "payload": {},
        }
    ).to_bytes()


def _wait_for(check: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def test_stats_counts_ready_messages_and_consumers(transport: Transport) -> None:
    assert transport.stats("never-declared") == QueueStats("never-declared", 0, 0)
    for i in range(3):
        transport.publish("work", f"m{i}".encode())
    assert transport.stats("work") == QueueStats("work", 3, 0)

    stop = threading.Event()
    held = threading.Event()
    release = threading.Event()

    def hold(delivery: Delivery) -> None:
        held.set()
        release.wait(10)
        delivery.ack()

    consumer = threading.Thread(
        target=transport.consume, args=("work", hold), kwargs={"prefetch": 1, "stop": stop}
    )
    consumer.start()
    try:
        assert held.wait(10)
        # one message is in the consumer's hands: two ready, one consumer
        _wait_for(lambda: transport.stats("work") == QueueStats("work", 2, 1))
    finally:
        stop.set()
        release.set()
        consumer.join(10)
    _wait_for(lambda: transport.stats("work").consumers == 0)
    assert transport.stats("work").ready == 2


def test_discard_drops_only_the_named_dead_letter(transport: Transport) -> None:
    bodies = [_envelope(f"movie-{i}") for i in range(3)]
    for i, body in enumerate(bodies):
        transport.dead_letter("work", body, reason=f"reason {i}")
    letters = dlq.list_dead(transport, "work")
    assert [d.reason for d in letters] == ["reason 0", "reason 1", "reason 2"]
    assert transport.stats(dlq_name("work")).ready == 3

    assert dlq.discard(transport, "work", message_ids=[letters[1].message_id]) == 1
    assert [d.key for d in dlq.list_dead(transport, "work")] == ["movie-0", "movie-2"]
    assert dlq.discard(transport, "work", message_ids=["no-such-id"]) == 0
    assert transport.stats(dlq_name("work")).ready == 2
    with pytest.raises(ValueError, match="message_ids"):
        dlq.discard(transport, "work", message_ids=[])
