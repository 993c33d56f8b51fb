"""Middleware around handlers: retries with backoff, metrics and timing, structured logs.

A middleware is ``middleware(invocation, call_next) -> Outcome``. The innermost call,
:func:`run_handler`, validates the message and runs the handler; middleware decide what a
failure means (retry later, or dead-letter) and record what happened.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter, Histogram
from pydantic import BaseModel, ValidationError

from cryolive.errors import BadInputError, InternalError
from cryolive.messaging.envelope import Envelope
from cryolive.messaging.recipe import Step, fill
from cryolive.messaging.service import (
    Context,
    Emit,
    HandlerResult,
    PermanentError,
    Service,
)

log = logging.getLogger("cryolive.messaging.worker")


@dataclass(frozen=True)
class Invocation:
    """One message on its way into a handler."""

    service: Service[Any]
    envelope: Envelope
    step: Step
    delivery_count: int


@dataclass(frozen=True)
class Outcome:
    """What to do with a message: send results on (``"done"``; ``"failed"`` when they record
    the work's failure), retry after a delay, or dead-letter (and send the failure's records).
    (Messages of cancelled work never get here: the worker drops them first.)"""

    kind: Literal["done", "failed", "retry", "dead"]
    emits: tuple[Emit, ...] = ()
    reason: str = ""
    delay_s: float = 0.0


Next = Callable[[Invocation], Outcome]
Middleware = Callable[[Invocation, Next], Outcome]


def run_handler(invocation: Invocation) -> Outcome:
    """Validate the step's filled parameters against the service's model and run it."""
    message, context = prepare(invocation)
    return outcome_of(invocation.service.handler(message, context))


def prepare(invocation: Invocation) -> tuple[BaseModel, Context]:
    """The typed message and the context a handler gets; :class:`PermanentError` when the
    step's filled parameters do not fit the service's model."""
    env, service = invocation.envelope, invocation.service
    try:
        message = service.message.model_validate(fill(invocation.step.parameters, env.parameters))
    except KeyError as exc:
        raise PermanentError(f"parameters: no value for placeholder {exc}") from exc
    except ValidationError as exc:
        raise PermanentError(f"parameters: do not fit {service.name!r}: {exc}") from exc
    context = Context(
        key=env.key,
        recipe=env.recipe.name,
        step=env.step,
        attempt=env.attempt,
        delivery_count=invocation.delivery_count,
        payload=env.payload,
    )
    return message, context


def outcome_of(result: HandlerResult) -> Outcome:
    """The outcome of a handler that returned ``result``."""
    if result is None:
        return Outcome("done")
    if isinstance(result, BaseModel):
        return Outcome("done", (Emit("default", result),))
    return Outcome("done", tuple(result))


def retries(invocation: Invocation, call_next: Next) -> Outcome:
    """Decide what a handler's failure means, by its place in the error family
    (:mod:`cryolive.errors`):

    - bad input (:class:`~cryolive.errors.BadInputError`): the failure is recorded through the
      service's ``on_failure`` and the message settled (``"failed"``); no retry can help;
    - a message whose parameters do not fit (:class:`PermanentError`) or a bug
      (:class:`~cryolive.errors.InternalError`): dead-lettered at once, and recorded;
    - anything else (:class:`~cryolive.errors.RetryableError` and unknown exceptions): a delayed
      retry, then, once the service's ``max_attempts`` are used up, dead-lettered and recorded.
    """
    try:
        return call_next(invocation)
    except PermanentError as exc:
        return _dead(invocation, exc, f"PermanentError: {exc}")
    except BadInputError as exc:
        emits = _failure_records(invocation, exc)
        if emits is None:
            return Outcome("dead", reason=f"{type(exc).__name__}: {exc}")
        return Outcome("failed", emits, reason=f"{type(exc).__name__}: {exc}")
    except InternalError as exc:
        log.exception("internal error in %s", invocation.service.name)
        return _dead(invocation, exc, f"{type(exc).__name__}: {exc}")
    except Exception as exc:
        service, attempt = invocation.service, invocation.envelope.attempt
        if attempt + 1 < service.max_attempts:
            return Outcome("retry", reason=repr(exc), delay_s=service.retry_delay_s(attempt))
        return _dead(invocation, exc, f"{exc!r} (failed {attempt + 1} attempts)")


def _dead(invocation: Invocation, exc: BaseException, reason: str) -> Outcome:
    return Outcome("dead", _failure_records(invocation, exc) or (), reason=reason)


def _failure_records(invocation: Invocation, exc: BaseException) -> tuple[Emit, ...] | None:
    """The service's records of this failure, or None when it keeps none (or cannot: a
    message too broken to say which work it was)."""
    hook = invocation.service.on_failure
    if hook is None:
        return None
    try:
        parameters = fill(invocation.step.parameters, invocation.envelope.parameters)
        return tuple(hook(parameters, invocation.service.name, exc))
    except Exception:
        log.warning("no failure record for %s", invocation.envelope.key, exc_info=True)
        return None


class Metrics:
    """Prometheus counters of outcomes and a histogram of handler seconds, per service.

    ``cryolive_handler_cpu_seconds_total`` adds the CPU time of the thread that ran each
    handler (``time.thread_time``: user + system of that thread only, so stages sharing one
    process are told apart); worker threads an engine starts itself (scipy FFT ``workers``)
    are not in it. Divided by ``cryolive_messages_total`` it is a stage's CPU-seconds per
    message (``bench/pipeline.py`` prints it per movie).
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter(
            "cryolive_messages",
            "Messages handled, by service and outcome.",
            ["service", "outcome"],
            registry=registry,
        )
        self.seconds = Histogram(
            "cryolive_handler_seconds",
            "Seconds spent in handlers (middleware included).",
            ["service"],
            registry=registry,
        )
        self.cpu_seconds = Counter(
            "cryolive_handler_cpu_seconds",
            "CPU seconds of the handler's thread (middleware included), by service.",
            ["service"],
            registry=registry,
        )
        # labels() looks its child up under a lock each time: keep the children at hand.
        self._seconds: dict[str, Histogram] = {}
        self._counts: dict[tuple[str, str], Counter] = {}
        self._cpu: dict[str, Counter] = {}

    def __call__(self, invocation: Invocation, call_next: Next) -> Outcome:
        start, cpu_start = time.perf_counter(), time.thread_time()
        outcome = call_next(invocation)
        name = invocation.service.name
        cpu = self._cpu.get(name) or self._cpu.setdefault(name, self.cpu_seconds.labels(name))
        cpu.inc(time.thread_time() - cpu_start)
        seconds = self._seconds.get(name) or self._seconds.setdefault(
            name, self.seconds.labels(name)
        )
        seconds.observe(time.perf_counter() - start)
        counter = self._counts.get((name, outcome.kind)) or self._counts.setdefault(
            (name, outcome.kind), self.messages.labels(name, outcome.kind)
        )
        counter.inc()
        return outcome


def structured_log(invocation: Invocation, call_next: Next) -> Outcome:
    """One log record per message, with its fields as ``extra`` (see ``JsonLogFormatter``)."""
    start = time.perf_counter()
    outcome = call_next(invocation)
    level = logging.INFO if outcome.kind == "done" else logging.WARNING
    if log.isEnabledFor(level):
        log.log(
            level,
            "message %s",
            outcome.kind,
            extra={
                "service": invocation.service.name,
                "key": invocation.envelope.key,
                "step": invocation.envelope.step,
                "attempt": invocation.envelope.attempt,
                "outcome": outcome.kind,
                "reason": outcome.reason,
                "seconds": round(time.perf_counter() - start, 6),
            },
        )
    return outcome


def chain(middleware: Sequence[Middleware], innermost: Next = run_handler) -> Next:
    """Compose middleware, the first in the list outermost."""
    call = innermost
    for layer in reversed(middleware):
        call = _bind(layer, call)
    return call


def _bind(layer: Middleware, call_next: Next) -> Next:
    def call(invocation: Invocation) -> Outcome:
        return layer(invocation, call_next)

    return call
