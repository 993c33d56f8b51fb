"""The embedded broker: queues in this process, for ``cryolive demo`` and tests.

It keeps RabbitMQ's semantics where cryolive relies on them: a message is removed only when
acknowledged; an unsettled or requeued message goes back to the head of its queue with its
delivery count raised; past the delivery limit it is dead-lettered with the reason; delayed
messages wait in a timer heap. Every transport opened on the same ``memory://name`` URL in a
process shares one broker; nothing survives the process.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryolive.messaging.transport import (
    ORIGIN_HEADER,
    REASON_HEADER,
    DeadLetter,
    Delivery,
    dlq_name,
)

log = logging.getLogger(__name__)


@dataclass
class _Message:
    body: bytes
    headers: dict[str, Any] = field(default_factory=dict)
    delivery_count: int = 0


class _Broker:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queues: dict[str, deque[_Message]] = {}
        self._delayed: list[tuple[float, int, str, _Message]] = []
        self._seq = itertools.count()

    def _queue(self, name: str) -> deque[_Message]:
        return self._queues.setdefault(name, deque())

    def _release_due(self) -> float | None:
        """Move due delayed messages to their queues; return seconds to the next one."""
        now = time.monotonic()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, name, msg = heapq.heappop(self._delayed)
            self._queue(name).append(msg)
        return self._delayed[0][0] - now if self._delayed else None

    def put(self, name: str, msg: _Message, *, delay_s: float = 0.0) -> None:
        with self._cond:
            if delay_s > 0:
                due = time.monotonic() + delay_s
                heapq.heappush(self._delayed, (due, next(self._seq), name, msg))
            else:
                self._queue(name).append(msg)
            self._cond.notify_all()

    def get(self, name: str, *, timeout_s: float) -> _Message | None:
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                next_due = self._release_due()
                queue = self._queue(name)
                if queue:
                    return queue.popleft()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(min(remaining, next_due) if next_due is not None else remaining)

    def requeue(self, name: str, msg: _Message, *, delivery_limit: int) -> None:
        msg.delivery_count += 1
        with self._cond:
            if msg.delivery_count > delivery_limit:
                msg.headers[REASON_HEADER] = f"broker: delivery_limit from {name}"
                msg.headers[ORIGIN_HEADER] = name
                self._queue(dlq_name(name)).append(msg)
            else:
                self._queue(name).appendleft(msg)
            self._cond.notify_all()

    def depth(self, name: str) -> int:
        with self._cond:
            self._release_due()
            return len(self._queue(name))

    def snapshot(self, name: str, limit: int) -> list[_Message]:
        with self._cond:
            return list(itertools.islice(self._queue(name), limit))

    def move(
        self,
        source: str,
        target: str,
        select: Callable[[_Message], bool],
        rewrite: Callable[[bytes], bytes],
    ) -> int:
        with self._cond:
            keep: deque[_Message] = deque()
            moved = 0
            for msg in self._queue(source):
                if select(msg):
                    self._queue(target).append(_Message(rewrite(msg.body)))
                    moved += 1
                else:
                    keep.append(msg)
            self._queues[source] = keep
            self._cond.notify_all()
            return moved

    def purge(self, name: str) -> int:
        with self._cond:
            count = len(self._queue(name))
            self._queue(name).clear()
            return count

    def delete(self, name: str) -> None:
        with self._cond:
            self._queues.pop(name, None)
            self._delayed = [d for d in self._delayed if d[2] != name]
            heapq.heapify(self._delayed)


_BROKERS: dict[str, _Broker] = {}
_BROKERS_LOCK = threading.Lock()


def _broker_for(url: str) -> _Broker:
    with _BROKERS_LOCK:
        return _BROKERS.setdefault(url, _Broker())


class EmbeddedTransport:
    """In-process transport (see module docstring).

    Parameters
    ----------
    url
        ``memory://`` or ``memory://name``: transports on the same URL share queues.
    prefix
        Prepended to every queue name.
    delivery_limit
        Redeliveries after which a message that keeps being requeued is dead-lettered
        (as RabbitMQ's ``x-delivery-limit``: ``delivery_limit + 1`` deliveries in all).
    """

    def __init__(
        self, url: str = "memory://", *, prefix: str = "", delivery_limit: int = 10
    ) -> None:
        if not url.startswith("memory://"):
            raise ValueError(f"url: not an embedded broker URL: {url!r}")
        if delivery_limit < 1:
            raise ValueError(f"delivery_limit: must be >= 1, got {delivery_limit}")
        self._broker = _broker_for(url)
        self._prefix = prefix
        self._delivery_limit = delivery_limit
        self._declared: set[str] = set()

    def _name(self, queue: str) -> str:
        name = self._prefix + queue
        self._declared.update((name, dlq_name(name)))
        return name

    def publish(
        self,
        queue: str,
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        delay_s: float = 0.0,
    ) -> None:
        self._broker.put(self._name(queue), _Message(body, dict(headers or {})), delay_s=delay_s)

    def dead_letter(self, queue: str, body: bytes, *, reason: str) -> None:
        name = self._name(queue)
        headers = {REASON_HEADER: reason, ORIGIN_HEADER: name}
        self._broker.put(dlq_name(name), _Message(body, headers))

    def consume(
        self,
        queue: str,
        on_message: Callable[[Delivery], None],
        *,
        prefetch: int,
        stop: threading.Event,
    ) -> None:
        if prefetch < 1:
            raise ValueError(f"prefetch: must be >= 1, got {prefetch}")
        name = self._name(queue)
        while not stop.is_set():
            msg = self._broker.get(name, timeout_s=0.2)
            if msg is None:
                continue
            settled = [False]

            def ack(settled: list[bool] = settled) -> None:
                settled[0] = True

            def requeue(msg: _Message = msg, settled: list[bool] = settled) -> None:
                if not settled[0]:
                    settled[0] = True
                    self._broker.requeue(name, msg, delivery_limit=self._delivery_limit)

            delivery = Delivery(msg.body, dict(msg.headers), msg.delivery_count, ack, requeue)
            try:
                on_message(delivery)
            finally:
                requeue()  # a no-op when the callback settled the message

    def depth(self, queue: str) -> int:
        return self._broker.depth(self._name(queue))

    def dead_letters(self, queue: str, *, limit: int = 100) -> list[DeadLetter]:
        return [
            DeadLetter(m.body, str(m.headers.get(REASON_HEADER, "unknown")), dict(m.headers))
            for m in self._broker.snapshot(dlq_name(self._name(queue)), limit)
        ]

    def reinject(
        self,
        queue: str,
        *,
        select: Callable[[DeadLetter], bool],
        rewrite: Callable[[bytes], bytes],
    ) -> int:
        name = self._name(queue)

        def chosen(m: _Message) -> bool:
            return select(DeadLetter(m.body, str(m.headers.get(REASON_HEADER, "")), m.headers))

        return self._broker.move(dlq_name(name), name, chosen, rewrite)

    def purge(self, queue: str) -> int:
        return self._broker.purge(self._prefix + queue)

    def delete_declared(self) -> None:
        for name in self._declared:
            self._broker.delete(name)
        self._declared.clear()

    def close(self) -> None:
        """Nothing to close: the broker lives as long as the process."""
