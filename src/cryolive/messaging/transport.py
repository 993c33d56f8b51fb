"""The transport interface: what cryolive needs from a message broker, and nothing more.

Two implementations: :class:`~cryolive.messaging.embedded.EmbeddedTransport` (in-process, no
server) and :class:`~cryolive.messaging.rabbitmq.RabbitTransport` (RabbitMQ over py-amqp).
Queue names given here are logical (``"echo"``); a transport may prefix them.

Every queue ``q`` has a dead-letter queue ``q.dlq``. A *topic* (Zocalo's ``topic`` steps) is a
broadcast: a message sent to it reaches every queue subscribed to it (a copy each); with none
subscribed it is dropped. A transport object is safe to share
between threads: each thread publishes on its own connection, and :meth:`Transport.consume`
consumes on a connection of its own, so publishing from a consumer callback never shares the
consuming connection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

REASON_HEADER = "x-cryolive-reason"
ORIGIN_HEADER = "x-cryolive-origin"


class BrokerUnavailable(ConnectionError):
    """The broker could not be reached within the transport's reconnection time limit."""


@dataclass(frozen=True)
class Delivery:
    """One message handed to a consumer callback. Call exactly one of ``ack``/``requeue``;
    a delivery the callback leaves unsettled is requeued."""

    body: bytes
    headers: Mapping[str, Any]
    delivery_count: int
    ack: Callable[[], None] = field(repr=False)
    requeue: Callable[[], None] = field(repr=False)


@dataclass(frozen=True)
class QueueStats:
    """A queue as the broker sees it now."""

    queue: str
    ready: int
    consumers: int


@dataclass(frozen=True)
class DeadLetter:
    """A message in a dead-letter queue."""

    body: bytes
    reason: str
    headers: Mapping[str, Any]


class Transport(Protocol):
    """What a broker backend provides."""

    def publish(
        self,
        queue: str,
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        delay_s: float = 0.0,
    ) -> None:
        """Send ``body`` to ``queue`` (after ``delay_s`` seconds); return once the broker has
        confirmed it. Reconnects as needed; raises :class:`BrokerUnavailable` on giving up."""

    def dead_letter(self, queue: str, body: bytes, *, reason: str) -> None:
        """Send ``body`` to ``queue``'s dead-letter queue with ``reason`` in a header."""

    def broadcast(
        self, topic: str, body: bytes, *, headers: Mapping[str, str] | None = None
    ) -> None:
        """Send ``body`` to every queue subscribed to ``topic`` (none: it is dropped)."""

    def subscribe(self, topic: str, queue: str) -> None:
        """Have ``queue`` (declared if new) receive a copy of every later broadcast on
        ``topic``. Idempotent."""

    def consume(
        self,
        queue: str,
        on_message: Callable[[Delivery], None],
        *,
        prefetch: int,
        stop: threading.Event,
    ) -> None:
        """Call ``on_message`` for each message of ``queue`` until ``stop`` is set, then return.
        Reconnects by itself; the message in hand is finished before returning, and
        messages fetched but not handled go back to the queue."""

    def depth(self, queue: str) -> int:
        """Messages ready in ``queue`` (not counting those held by consumers)."""

    def stats(self, queue: str) -> QueueStats:
        """Messages ready in ``queue`` and consumers attached to it; a queue never declared
        counts as empty, without consumers (and is not created)."""

    def dead_letters(self, queue: str, *, limit: int = 100) -> list[DeadLetter]:
        """Up to ``limit`` messages of ``queue``'s dead-letter queue, left in place."""

    def reinject(
        self,
        queue: str,
        *,
        select: Callable[[DeadLetter], bool],
        rewrite: Callable[[bytes], bytes],
    ) -> int:
        """Move the selected dead letters back to ``queue`` (body passed through ``rewrite``);
        each is removed from the dead-letter queue only after its re-publish is confirmed."""

    def discard(self, queue: str, *, select: Callable[[DeadLetter], bool]) -> int:
        """Drop the selected dead letters of ``queue``; the others stay, in order."""

    def purge(self, queue: str) -> int:
        """Drop every message of ``queue`` (use ``"<q>.dlq"`` for a dead-letter queue)."""

    def delete_declared(self) -> None:
        """Delete every queue this transport declared (tests and benchmarks clean up)."""

    def close(self) -> None:
        """Close every connection this transport opened."""


@runtime_checkable
class BatchConsumer(Protocol):
    """A transport that can also hand a consumer several messages at once (both of
    cryolive's brokers; a wrapper such as the Zocalo transport need not)."""

    def consume_batch(
        self,
        queue: str,
        on_batch: Callable[[Sequence[Delivery]], None],
        *,
        prefetch: int,
        stop: threading.Event,
    ) -> None:
        """As :meth:`Transport.consume`, but ``on_batch`` gets every message already waiting,
        up to ``prefetch`` (at least one; it never waits for a batch to fill). Each delivery is
        settled on its own; those ``on_batch`` leaves unsettled (it raised, say) are requeued,
        and a consumer that dies leaves them all to be redelivered."""


def dlq_name(queue: str) -> str:
    return f"{queue}.dlq"
