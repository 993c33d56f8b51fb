"""The embedded broker: queues in this process, for ``cryolive demo`` and tests.

It keeps RabbitMQ's semantics where cryolive relies on them: a message is removed only when
acknowledged; an unsettled or requeued message goes back to the head of its queue with its
delivery count raised; past the delivery limit it is dead-lettered with the reason; delayed
messages wait in a timer heap. Every transport opened on the same ``memory://name`` URL in a
process shares one broker; nothing survives the process, except the dead letters when a
``journal`` folder is given: each is also written there as a file, so that other processes
(``cryolive dlq list``, the staff area of ``cryolive web``) can list them, and discarding or
purging there removes them. Re-injecting needs the pipeline's own process (its queues are in
its memory).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from cryolive.messaging._memory import Message, broker_for
from cryolive.messaging.transport import (
    ORIGIN_HEADER,
    REASON_HEADER,
    DeadLetter,
    Delivery,
    QueueStats,
    dlq_name,
)

log = logging.getLogger(__name__)
_JOURNALED = "x-cryolive-journaled"


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
    journal
        Folder where dead letters are also kept as files (see the module docstring).
    """

    def __init__(
        self,
        url: str = "memory://",
        *,
        prefix: str = "",
        delivery_limit: int = 10,
        journal: Path | str | None = None,
    ) -> None:
        if not url.startswith("memory://"):
            raise ValueError(f"url: not an embedded broker URL: {url!r}")
        if delivery_limit < 1:
            raise ValueError(f"delivery_limit: must be >= 1, got {delivery_limit}")
        self._broker = broker_for(url)
        self._prefix = prefix
        self._delivery_limit = delivery_limit
        self._declared: set[str] = set()
        self._journal = None if journal is None else Path(journal)

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
        self._broker.put(self._name(queue), Message(body, dict(headers or {})), delay_s=delay_s)

    def broadcast(
        self, topic: str, body: bytes, *, headers: Mapping[str, str] | None = None
    ) -> None:
        self._broker.broadcast(self._prefix + topic, Message(body, dict(headers or {})))

    def subscribe(self, topic: str, queue: str) -> None:
        self._broker.subscribe(self._prefix + topic, self._name(queue))

    def dead_letter(self, queue: str, body: bytes, *, reason: str) -> None:
        name = self._name(queue)
        headers = {REASON_HEADER: reason, ORIGIN_HEADER: name}
        if self._journal is not None:
            headers[_JOURNALED] = "1"
        self._broker.put(dlq_name(name), Message(body, headers))
        if self._journal is not None:
            folder = self._journal / dlq_name(name)
            folder.mkdir(parents=True, exist_ok=True)
            record = {"body": base64.b64encode(body).decode(), "headers": headers}
            path = folder / f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.json"
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(record))
            temporary.replace(path)  # readers never see half a letter

    def _journaled(self, name: str) -> list[tuple[Path, DeadLetter]]:
        """The journal's dead letters of queue ``name``, oldest first."""
        assert self._journal is not None
        found = []
        for path in sorted((self._journal / dlq_name(name)).glob("*.json")):
            try:
                record = json.loads(path.read_text())
                body = base64.b64decode(record["body"])
                headers = {str(k): str(v) for k, v in record["headers"].items()}
            except (OSError, ValueError, KeyError, TypeError):
                continue  # removed meanwhile, or not ours
            found.append((path, DeadLetter(body, headers.get(REASON_HEADER, "unknown"), headers)))
        return found

    def _unjournal(self, name: str, chosen: Callable[[DeadLetter], bool]) -> int:
        if self._journal is None:
            return 0
        removed = 0
        for path, letter in self._journaled(name):
            if chosen(letter):
                path.unlink(missing_ok=True)
                removed += 1
        return removed

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
        self._broker.attach(name, 1)
        try:
            self._consume(name, on_message, stop)
        finally:
            self._broker.attach(name, -1)

    def _consume(
        self, name: str, on_message: Callable[[Delivery], None], stop: threading.Event
    ) -> None:
        while not stop.is_set():
            msg = self._broker.get(name, timeout_s=0.2)
            if msg is None:
                continue
            settled = [False]

            def ack(settled: list[bool] = settled) -> None:
                settled[0] = True

            def requeue(msg: Message = msg, settled: list[bool] = settled) -> None:
                if not settled[0]:
                    settled[0] = True
                    self._broker.requeue(name, msg, delivery_limit=self._delivery_limit)

            delivery = Delivery(msg.body, dict(msg.headers), msg.delivery_count, ack, requeue)
            try:
                on_message(delivery)
            finally:
                requeue()  # a no-op when the callback settled the message

    def consume_batch(
        self,
        queue: str,
        on_batch: Callable[[Sequence[Delivery]], None],
        *,
        prefetch: int,
        stop: threading.Event,
    ) -> None:
        if prefetch < 1:
            raise ValueError(f"prefetch: must be >= 1, got {prefetch}")
        name = self._name(queue)
        self._broker.attach(name, 1)
        try:
            while not stop.is_set():
                first = self._broker.get(name, timeout_s=0.2)
                if first is None:
                    continue
                batch = [first]
                while len(batch) < prefetch:  # what is waiting now; never wait for more
                    more = self._broker.get(name, timeout_s=0.0)
                    if more is None:
                        break
                    batch.append(more)
                self._deliver_batch(name, batch, on_batch)
        finally:
            self._broker.attach(name, -1)

    def _deliver_batch(
        self, name: str, batch: list[Message], on_batch: Callable[[Sequence[Delivery]], None]
    ) -> None:
        settled = [False] * len(batch)
        deliveries = []
        for i, msg in enumerate(batch):

            def ack(i: int = i) -> None:
                settled[i] = True

            def requeue(i: int = i, msg: Message = msg) -> None:
                if not settled[i]:
                    settled[i] = True
                    self._broker.requeue(name, msg, delivery_limit=self._delivery_limit)

            deliveries.append(
                Delivery(msg.body, dict(msg.headers), msg.delivery_count, ack, requeue)
            )
        try:
            on_batch(deliveries)
        finally:
            for delivery in reversed(deliveries):  # back to the head of the queue, in order
                delivery.requeue()  # a no-op for those the callback settled

    def depth(self, queue: str) -> int:
        return self._broker.depth(self._name(queue))

    def stats(self, queue: str) -> QueueStats:
        name = self._prefix + queue
        if self._journal is not None and queue.endswith(".dlq"):
            letters = len(self.dead_letters(queue.removesuffix(".dlq"), limit=10**6))
            return QueueStats(queue, letters, 0)
        return QueueStats(queue, self._broker.depth(name), self._broker.consumers(name))

    def dead_letters(self, queue: str, *, limit: int = 100) -> list[DeadLetter]:
        """This process's dead letters of ``queue``, and with a journal those of the other
        processes that journal there too (each once)."""
        name = self._name(queue)
        held = [
            DeadLetter(m.body, str(m.headers.get(REASON_HEADER, "unknown")), dict(m.headers))
            for m in self._broker.snapshot(dlq_name(name), limit)
        ]
        if self._journal is None:
            return held
        journaled = [letter for _, letter in self._journaled(name)]
        # A letter journaled by this process but gone from the journal was discarded by
        # another process: it is not shown (the journal decides); others are shown once.
        unjournaled = [d for d in held if _JOURNALED not in d.headers]
        return (journaled + unjournaled)[:limit]

    def reinject(
        self,
        queue: str,
        *,
        select: Callable[[DeadLetter], bool],
        rewrite: Callable[[bytes], bytes],
    ) -> int:
        name = self._name(queue)

        def chosen(m: Message) -> bool:
            return select(DeadLetter(m.body, str(m.headers.get(REASON_HEADER, "")), m.headers))

        moved = self._broker.move(dlq_name(name), name, chosen, rewrite)
        if moved:
            self._unjournal(name, select)
        return moved

    def discard(self, queue: str, *, select: Callable[[DeadLetter], bool]) -> int:
        def chosen(m: Message) -> bool:
            return select(DeadLetter(m.body, str(m.headers.get(REASON_HEADER, "")), m.headers))

        dropped = self._broker.drop(dlq_name(self._prefix + queue), chosen)
        return max(dropped, self._unjournal(self._prefix + queue, select))

    def purge(self, queue: str) -> int:
        purged = self._broker.purge(self._prefix + queue)
        if queue.endswith(".dlq") and self._journal is not None:
            name = self._prefix + queue.removesuffix(".dlq")
            purged = max(purged, self._unjournal(name, lambda letter: True))
        return purged

    def delete_declared(self) -> None:
        for name in self._declared:
            self._broker.delete(name)
        self._declared.clear()

    def close(self) -> None:
        """Nothing to close: the broker lives as long as the process."""
