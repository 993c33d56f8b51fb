"""The reconciler: re-send work whose result has not appeared within a time limit.

The database, not the broker, remembers what is due. The reconciler only needs the
:class:`WorkLedger` below; ``InMemoryLedger`` serves the embedded deployment and tests, and
the SQL implementation lives with the database layer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from cryolive.messaging.envelope import Envelope
from cryolive.messaging.transport import Transport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DueWork:
    """A unit of work that was dispatched and whose result is still missing.

    Attributes
    ----------
    key
        Idempotency key of the work (``Envelope.key``).
    queue
        Queue the work was sent to.
    envelope
        The message as first dispatched (JSON bytes of an :class:`Envelope`).
    dispatched_at
        Unix time (s) of the latest dispatch.
    dispatches
        How often it has been dispatched so far.
    """

    key: str
    queue: str
    envelope: bytes
    dispatched_at: float
    dispatches: int


class Due(Protocol):
    """What the reconciler reads of one item of due work (:class:`DueWork` has it; a ledger
    below messaging, such as the database's, returns its own record of the same shape)."""

    @property
    def key(self) -> str: ...
    @property
    def queue(self) -> str: ...
    @property
    def envelope(self) -> bytes: ...
    @property
    def dispatched_at(self) -> float: ...
    @property
    def dispatches(self) -> int: ...


class WorkLedger(Protocol):
    """What the reconciler needs from the store of due work."""

    def overdue(self, older_than_s: float, *, now: float, limit: int) -> Sequence[Due]:
        """Work not completed whose latest dispatch is older than ``now - older_than_s``,
        oldest first, at most ``limit`` items."""
        ...

    def mark_dispatched(self, key: str, *, now: float) -> None:
        """Record a re-dispatch: latest dispatch time ``now``, dispatch count + 1."""
        ...


class InMemoryLedger:
    """A :class:`WorkLedger` in memory (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._due: dict[str, DueWork] = {}
        self._done: set[str] = set()

    def expect(self, envelope: Envelope, queue: str, *, now: float) -> None:
        """Record that ``envelope`` was dispatched to ``queue`` at ``now`` (Unix s)."""
        with self._lock:
            if envelope.key not in self._due and envelope.key not in self._done:
                self._due[envelope.key] = DueWork(envelope.key, queue, envelope.to_bytes(), now, 1)

    def complete(self, key: str) -> None:
        """The result of ``key`` has appeared."""
        with self._lock:
            self._due.pop(key, None)
            self._done.add(key)

    def pending(self) -> set[str]:
        with self._lock:
            return set(self._due)

    def overdue(self, older_than_s: float, *, now: float, limit: int) -> list[DueWork]:
        with self._lock:
            late = [w for w in self._due.values() if w.dispatched_at < now - older_than_s]
        return sorted(late, key=lambda w: w.dispatched_at)[:limit]

    def mark_dispatched(self, key: str, *, now: float) -> None:
        with self._lock:
            work = self._due.get(key)
            if work is not None:
                self._due[key] = replace(work, dispatched_at=now, dispatches=work.dispatches + 1)


class Reconciler:
    """Re-sends overdue work.

    Parameters
    ----------
    ledger
        Store of due work.
    transport
        Broker to re-send on.
    timeout_s
        Seconds after a dispatch without a result before the work is sent again.
    max_dispatches
        Work dispatched this often is left alone (and logged): it needs a person.
    batch
        Most items re-sent per pass.
    clock
        Unix time source (seconds).
    """

    def __init__(
        self,
        ledger: WorkLedger,
        transport: Transport,
        *,
        timeout_s: float,
        max_dispatches: int = 5,
        batch: int = 500,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s: must be > 0, got {timeout_s}")
        if max_dispatches < 1 or batch < 1:
            raise ValueError("max_dispatches, batch: must be >= 1")
        self.ledger, self.transport = ledger, transport
        self.timeout_s, self.max_dispatches, self.batch = timeout_s, max_dispatches, batch
        self.clock = clock

    def run_once(self) -> list[str]:
        """One pass: re-send what is overdue; return the keys re-sent.

        Work is not re-sent while any queue of its recipe still holds messages: it may be
        among them, waiting its turn behind a backlog, and sending it again would only grow
        the backlog. At most ``batch`` items go per pass.
        """
        now = self.clock()
        sent: list[str] = []
        busy: dict[str, bool] = {}
        waiting = 0
        for work in self.ledger.overdue(self.timeout_s, now=now, limit=self.batch):
            if work.dispatches >= self.max_dispatches:
                log.error("work %s still missing after %d dispatches", work.key, work.dispatches)
                continue
            envelope = Envelope.from_bytes(work.envelope)
            queues = {work.queue} | {s.queue for s in envelope.recipe.steps.values()}
            if any(self._busy(queue, busy) for queue in sorted(queues)):
                waiting += 1
                continue
            fresh = Envelope(**{**envelope.model_dump(exclude={"message_id"}), "attempt": 0})
            self.transport.publish(work.queue, fresh.to_bytes())
            self.ledger.mark_dispatched(work.key, now=now)
            sent.append(work.key)
        if sent:
            log.warning("re-sent %d overdue work items", len(sent))
        if waiting:
            log.info("%d overdue work items may be waiting in a backlog: not re-sent", waiting)
        return sent

    def _busy(self, queue: str, seen: dict[str, bool]) -> bool:
        """Whether ``queue`` holds messages now (asked once per pass)."""
        if queue not in seen:
            seen[queue] = self.transport.stats(queue).ready > 0
        return seen[queue]

    def run(self, stop: threading.Event, *, interval_s: float = 30.0) -> None:
        """Reconcile every ``interval_s`` seconds until ``stop`` is set."""
        while not stop.wait(interval_s):
            self.run_once()
