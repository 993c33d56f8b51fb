"""Workers: consumers that run one service's handler on its queues.

A worker thread takes a message, runs it through the middleware chain, sends the outcome on
(results to the next steps, a delayed retry, or a dead letter), and only then acknowledges
it: a worker that dies before the acknowledgement leaves the message to be redelivered, and
the idempotency key lets the redelivery be recognised.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from cryolive.errors import InternalError
from cryolive.messaging.dispatch import next_envelope, send_to_step, subscription_queue
from cryolive.messaging.envelope import Envelope, MalformedMessage
from cryolive.messaging.middleware import (
    Invocation,
    Metrics,
    Middleware,
    Outcome,
    chain,
    outcome_of,
    prepare,
    retries,
    structured_log,
)
from cryolive.messaging.service import PermanentError, Service
from cryolive.messaging.transport import BatchConsumer, Delivery, Transport

log = logging.getLogger(__name__)

HEARTBEAT_S = 30.0  # how often a worker reports itself, at most


@dataclass(frozen=True)
class Beat:
    """A worker's report of itself, once per :data:`HEARTBEAT_S`: it is alive and consuming."""

    service: str
    queues: tuple[str, ...]
    consumers: int  # consumer threads per queue
    host: str
    pid: int
    started_at: dt.datetime  # naive UTC
    at: dt.datetime  # naive UTC
    handled: int  # messages handled since it started


class Worker:
    """Consumers of one service.

    Parameters
    ----------
    transport
        Broker to consume from and publish to.
    service
        The service whose handler runs.
    queues
        Queues to consume (default: the service's name, unless ``topics`` are given). Recipe
        steps name their queue.
    topics
        Topics to take broadcasts of (Zocalo's topic-only steps), each through the service's
        subscription queue (:func:`~cryolive.messaging.dispatch.subscription_queue`).
    concurrency
        Consumer threads per queue, each with its own connection.
    prefetch
        Messages the broker may hand each consumer ahead of its acknowledgements. For a
        service with a ``batch_handler`` (the writer), also the most messages handled together:
        those already waiting, up to ``prefetch``, go to the batch handler in one call (one
        transaction), and each is acknowledged after it; if it raises, each is run again on
        its own, so a bad message is retried or dead-lettered alone. (A transport without
        ``consume_batch``, such as the Zocalo wrapper, takes them one at a time.)
    middleware
        Outermost first; default: structured logs, metrics, retries.
    metrics
        Prometheus registry the default metrics middleware records into.
    cancelled
        Asked of every message before its handler runs: true when the work it belongs to was
        cancelled (its run stopped). Such a message is acknowledged and dropped.
    heartbeat
        Called with a :class:`Beat` when the worker starts and every ``heartbeat_s`` while it
        runs (the staff area's worker health); an exception it raises is logged, never fatal.
    """

    def __init__(
        self,
        transport: Transport,
        service: Service[Any],
        *,
        queues: Sequence[str] = (),
        topics: Sequence[str] = (),
        concurrency: int = 1,
        prefetch: int = 1,
        middleware: Sequence[Middleware] | None = None,
        metrics: CollectorRegistry | None = None,
        cancelled: Callable[[Envelope], bool] | None = None,
        heartbeat: Callable[[Beat], None] | None = None,
        heartbeat_s: float = HEARTBEAT_S,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency: must be >= 1, got {concurrency}")
        if prefetch < 1:
            raise ValueError(f"prefetch: must be >= 1, got {prefetch}")
        self.transport = transport
        self.service = service
        self.topics = tuple(topics)
        subscribed = tuple(subscription_queue(t, service.name) for t in self.topics)
        self.queues = (tuple(queues) or (() if topics else (service.name,))) + subscribed
        self._subscribed = set(subscribed)
        self.concurrency = concurrency
        self.prefetch = prefetch
        self.metrics_registry = metrics if metrics is not None else CollectorRegistry()
        if middleware is None:
            middleware = [structured_log, Metrics(self.metrics_registry), retries]
        self._middleware = tuple(middleware)
        self._call = chain(middleware)
        # several messages per call of the service's batch handler, where it has one
        self.batching = (
            service.batch_handler is not None
            and prefetch > 1
            and isinstance(transport, BatchConsumer)
        )
        self._cancelled = cancelled
        self.dropped = 0  # messages dropped because their work was cancelled
        self.handled = 0  # messages handled (any outcome)
        self._count = threading.Lock()
        self._heartbeat = heartbeat
        self._heartbeat_s = heartbeat_s
        self._started_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the consumer threads and return."""
        self._stop.clear()
        for topic in self.topics:  # before consuming: no broadcast after start() is missed
            self.transport.subscribe(topic, subscription_queue(topic, self.service.name))
        self._started_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        if self._heartbeat is not None:
            beats = threading.Thread(
                target=self._beat, name=f"{self.service.name}-heartbeat", daemon=True
            )
            beats.start()
            self._threads.append(beats)
        for queue in self.queues:
            for n in range(self.concurrency):
                thread = threading.Thread(
                    target=self._consume, args=(queue,), name=f"{queue}-{n}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def stop(self, *, timeout_s: float = 30.0) -> None:
        """Finish the messages in hand, return prefetched ones to the queue, and join."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout_s)
        self._threads = []

    def run(self) -> None:
        """Start and block until :meth:`stop` is called (e.g. from a SIGTERM handler)."""
        self.start()
        self._stop.wait()
        self.stop()

    def request_stop(self) -> None:
        """Ask the worker to stop; safe to call from a signal handler."""
        self._stop.set()

    def beat(self) -> Beat:
        """The worker as it stands now."""
        return Beat(
            service=self.service.name,
            queues=self.queues,
            consumers=self.concurrency,
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=self._started_at,
            at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
            handled=self.handled,
        )

    def _beat(self) -> None:
        assert self._heartbeat is not None
        while True:
            try:
                self._heartbeat(self.beat())
            except Exception:  # the database is away: the next beat tries again
                log.warning("worker %s: heartbeat not recorded", self.service.name, exc_info=True)
            if self._stop.wait(self._heartbeat_s):
                return

    def _consume(self, queue: str) -> None:
        if self.batching:
            assert isinstance(self.transport, BatchConsumer)

            def on_batch(deliveries: Sequence[Delivery]) -> None:
                try:
                    self.handle_batch(queue, deliveries)
                    with self._count:
                        self.handled += len(deliveries)
                except OSError:
                    raise  # the broker went away: the transport reconnects, the messages return
                except Exception:  # a bug outside the handler: as on_message below
                    log.exception("worker %s failed on a batch from %s", self.service.name, queue)

            self.transport.consume_batch(queue, on_batch, prefetch=self.prefetch, stop=self._stop)
            return

        def on_message(delivery: Delivery) -> None:
            try:
                self.handle(queue, delivery)
                with self._count:
                    self.handled += 1
            except OSError:
                raise  # the broker went away: the transport reconnects, the message returns
            except Exception:
                # A bug outside the handler: log it and leave the message unsettled, so the
                # transport requeues it; past the delivery limit it is dead-lettered.
                log.exception("worker %s failed on a message from %s", self.service.name, queue)

        self.transport.consume(queue, on_message, prefetch=self.prefetch, stop=self._stop)

    def handle(self, queue: str, delivery: Delivery) -> None:
        """Handle one delivery from ``queue`` and settle it."""
        admitted = self._admit(queue, delivery)
        if admitted is not None:
            self._settle(queue, delivery, admitted, self._call(admitted))

    def handle_batch(self, queue: str, deliveries: Sequence[Delivery]) -> None:
        """Handle deliveries from ``queue`` together through the service's batch handler, and
        settle each once the batch's work is done; should the batch handler raise, run each
        message on its own, as :meth:`handle` does, so that a bad one fails alone."""
        admitted = []
        for delivery in deliveries:
            invocation = self._admit(queue, delivery)
            if invocation is not None:
                admitted.append((delivery, invocation))
        outcomes = self._run_batch([invocation for _, invocation in admitted])
        for (delivery, invocation), outcome in zip(admitted, outcomes, strict=True):
            if outcome is None:  # the batch failed, or this message does not fit its model
                outcome = self._call(invocation)
            else:  # through the middleware (logs, metrics) with its outcome known
                outcome = chain(self._middleware, _known(outcome))(invocation)
            self._settle(queue, delivery, invocation, outcome)

    def _run_batch(self, invocations: list[Invocation]) -> list[Outcome | None]:
        """The outcomes of the batch handler, one per invocation; None for each that must be
        run on its own."""
        batch_handler = self.service.batch_handler
        outcomes: list[Outcome | None] = [None] * len(invocations)
        if batch_handler is None or len(invocations) < 2:
            return outcomes
        items, where = [], []
        for i, invocation in enumerate(invocations):
            try:
                items.append(prepare(invocation))
                where.append(i)
            except PermanentError:
                continue  # dead-lettered by the single path's middleware
        if not items:
            return outcomes
        try:
            results = batch_handler(items)
            if results is not None and len(results) != len(items):
                raise InternalError(
                    f"batch handler of {self.service.name!r}: {len(results)} results "
                    f"for {len(items)} messages"
                )
        except Exception:
            log.warning(
                "worker %s: a batch of %d failed; running each on its own",
                self.service.name,
                len(items),
                exc_info=True,
            )
            return outcomes
        for n, i in enumerate(where):
            outcomes[i] = outcome_of(None if results is None else results[n])
        return outcomes

    def _admit(self, queue: str, delivery: Delivery) -> Invocation | None:
        """The invocation of a delivery the handler should see; None (the delivery settled)
        for one that is malformed, not this service's, or of cancelled work."""
        try:
            envelope = Envelope.from_bytes(delivery.body)
        except MalformedMessage as exc:
            self.transport.dead_letter(queue, delivery.body, reason=str(exc))
            delivery.ack()
            return None
        step = envelope.recipe.steps.get(envelope.step)
        if queue in self._subscribed and step is not None and step.service != self.service.name:
            # a broadcast reaches every subscriber: this one is for another service's step
            delivery.ack()
            return None
        if step is None or step.service != self.service.name:
            reason = f"step: {envelope.step!r} is not a step of service {self.service.name!r}"
            self.transport.dead_letter(queue, delivery.body, reason=reason)
            delivery.ack()
            return None
        missing = {t for ts in step.outputs.values() for t in ts} - envelope.recipe.steps.keys()
        if missing:
            reason = f"recipe: step {envelope.step!r} sends to undefined steps {sorted(missing)}"
            self.transport.dead_letter(queue, delivery.body, reason=reason)
            delivery.ack()
            return None
        if self._cancelled is not None and self._cancelled(envelope):
            log.info("dropped %s from %s: its work was cancelled", envelope.key, queue)
            self.dropped += 1
            delivery.ack()
            return None
        return Invocation(self.service, envelope, step, delivery.delivery_count)

    def _settle(
        self, queue: str, delivery: Delivery, invocation: Invocation, outcome: Outcome
    ) -> None:
        """Send ``outcome`` on, then acknowledge the delivery."""
        try:
            self._send(queue, invocation.envelope, outcome, delivery.body)
        except OSError:
            raise
        except Exception as exc:  # e.g. a result that cannot be serialised
            reason = f"sending the {outcome.kind} outcome failed: {exc!r}"
            self.transport.dead_letter(queue, delivery.body, reason=reason)
        delivery.ack()

    def _send(self, queue: str, envelope: Envelope, outcome: Outcome, body: bytes) -> None:
        if outcome.kind == "retry":
            retry = envelope.model_copy(update={"attempt": envelope.attempt + 1})
            self.transport.publish(queue, retry.to_bytes(), delay_s=outcome.delay_s)
        elif outcome.kind == "dead":
            self.transport.dead_letter(queue, body, reason=outcome.reason)
        if outcome.kind in ("done", "failed", "dead"):
            outputs = envelope.recipe.steps[envelope.step].outputs
            for emit in outcome.emits:
                for target in outputs.get(emit.output, []):
                    message = next_envelope(envelope, target, emit.result)
                    send_to_step(self.transport, envelope.recipe.steps[target], message.to_bytes())


def _known(outcome: Outcome) -> Callable[[Invocation], Outcome]:
    """An innermost call that returns ``outcome`` (of work already done in a batch)."""

    def call(invocation: Invocation) -> Outcome:
        return outcome

    return call
