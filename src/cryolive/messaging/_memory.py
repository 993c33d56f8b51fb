"""The embedded broker's queues: ack/requeue semantics, delivery limit, delayed messages."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryolive.messaging.transport import ORIGIN_HEADER, REASON_HEADER, dlq_name


@dataclass
class Message:
    body: bytes
    headers: dict[str, Any] = field(default_factory=dict)
    delivery_count: int = 0


class Broker:
    def __init__(self) -> None:
        # One lock; one condition per queue, so a message wakes only that queue's consumers.
        self._lock = threading.Lock()
        self._conds: dict[str, threading.Condition] = {}
        self._queues: dict[str, deque[Message]] = {}
        self._delayed: list[tuple[float, int, str, Message]] = []
        self._seq = itertools.count()
        self._consumers: dict[str, int] = {}
        self._topics: dict[str, set[str]] = {}  # topic -> queues subscribed to it

    def _queue(self, name: str) -> deque[Message]:
        return self._queues.setdefault(name, deque())

    def _wake(self, name: str, n: int = 1) -> None:
        cond = self._conds.get(name)
        if cond is not None:
            cond.notify(n)

    def _release_due(self) -> float | None:
        """Move due delayed messages to their queues; return seconds to the next one."""
        now = time.monotonic()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, name, msg = heapq.heappop(self._delayed)
            self._queue(name).append(msg)
            self._wake(name)
        return self._delayed[0][0] - now if self._delayed else None

    def put(self, name: str, msg: Message, *, delay_s: float = 0.0) -> None:
        with self._lock:
            if delay_s > 0:
                due = time.monotonic() + delay_s
                heapq.heappush(self._delayed, (due, next(self._seq), name, msg))
            else:
                self._queue(name).append(msg)
            self._wake(name)

    def subscribe(self, topic: str, name: str) -> None:
        with self._lock:
            self._topics.setdefault(topic, set()).add(name)
            self._queue(name)

    def broadcast(self, topic: str, msg: Message) -> None:
        with self._lock:
            for name in sorted(self._topics.get(topic, ())):
                self._queue(name).append(Message(msg.body, dict(msg.headers)))
                self._wake(name)

    def get(self, name: str, *, timeout_s: float) -> Message | None:
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while True:
                next_due = self._release_due()
                queue = self._queue(name)
                if queue:
                    return queue.popleft()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                cond = self._conds.setdefault(name, threading.Condition(self._lock))
                cond.wait(min(remaining, next_due) if next_due is not None else remaining)

    def requeue(self, name: str, msg: Message, *, delivery_limit: int) -> None:
        msg.delivery_count += 1
        with self._lock:
            if msg.delivery_count > delivery_limit:
                msg.headers[REASON_HEADER] = f"broker: delivery_limit from {name}"
                msg.headers[ORIGIN_HEADER] = name
                self._queue(dlq_name(name)).append(msg)
            else:
                self._queue(name).appendleft(msg)
                self._wake(name)

    def depth(self, name: str) -> int:
        with self._lock:
            self._release_due()
            return len(self._queue(name))

    def attach(self, name: str, change: int) -> None:
        """Count a consumer of ``name`` in (``change=1``) or out (``change=-1``)."""
        with self._lock:
            self._consumers[name] = self._consumers.get(name, 0) + change

    def consumers(self, name: str) -> int:
        with self._lock:
            return self._consumers.get(name, 0)

    def snapshot(self, name: str, limit: int) -> list[Message]:
        with self._lock:
            return list(itertools.islice(self._queue(name), limit))

    def move(
        self,
        source: str,
        target: str,
        select: Callable[[Message], bool],
        rewrite: Callable[[bytes], bytes],
    ) -> int:
        with self._lock:
            keep: deque[Message] = deque()
            moved = 0
            for msg in self._queue(source):
                if select(msg):
                    self._queue(target).append(Message(rewrite(msg.body)))
                    moved += 1
                else:
                    keep.append(msg)
            self._queues[source] = keep
            self._wake(target, moved)
            return moved

    def drop(self, name: str, select: Callable[[Message], bool]) -> int:
        with self._lock:
            queue = self._queue(name)
            keep = deque(m for m in queue if not select(m))
            dropped = len(queue) - len(keep)
            self._queues[name] = keep
            return dropped

    def purge(self, name: str) -> int:
        with self._lock:
            count = len(self._queue(name))
            self._queue(name).clear()
            return count

    def delete(self, name: str) -> None:
        with self._lock:
            self._queues.pop(name, None)
            self._delayed = [d for d in self._delayed if d[2] != name]
            heapq.heapify(self._delayed)


_BROKERS: dict[str, Broker] = {}
_BROKERS_LOCK = threading.Lock()


def broker_for(url: str) -> Broker:
    with _BROKERS_LOCK:
        return _BROKERS.setdefault(url, Broker())
