"""Services: a typed message model plus one handler, and the registry that names them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from cryolive.errors import BadInputError

M = TypeVar("M", bound=BaseModel)


class PermanentError(BadInputError):
    """A message that a retry cannot cure (its parameters do not fit the service): the
    failure is recorded when the service can, and the message dead-lettered at once."""


@dataclass(frozen=True)
class Context:
    """What a handler knows about the message besides its typed content.

    Attributes
    ----------
    key
        Idempotency key of the work: write results as upserts on it, so that a redelivery
        has no second effect.
    recipe, step
        Where the message sits in its recipe.
    attempt
        0 on the first try, then 1, 2, … on delayed retries.
    delivery_count
        How often the broker handed this very message out before (crashed workers).
    payload
        The upstream step's result, as JSON-compatible values.
    """

    key: str
    recipe: str
    step: str
    attempt: int
    delivery_count: int
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Emit:
    """A result sent on a named output of the step (``"default"`` when a handler returns a
    bare model)."""

    output: str
    result: BaseModel


HandlerResult = BaseModel | Sequence[Emit] | None
# ``batch_handler([(message, context), ...])``: one result per message, or None (no results).
BatchHandler = Callable[[Sequence[tuple[Any, Context]]], Sequence[HandlerResult] | None]
# ``on_failure(parameters, stage, error)``: the records that say why a message's work failed.
FailureHook = Callable[[Mapping[str, Any], str, BaseException], Sequence[Emit]]


@dataclass(frozen=True)
class Service(Generic[M]):
    """A service: its message model and its handler.

    Parameters
    ----------
    name
        Unique name recipes refer to.
    message
        Pydantic model a step's filled parameters must validate against.
    handler
        ``handler(message, context)`` returning a result model (sent on ``"default"``), a
        sequence of :class:`Emit`, or ``None``. It keeps no state between messages.
    max_attempts
        Tries before a failing message is dead-lettered (first try included).
    retry_base_s, retry_max_s
        Delay before retry ``n`` is ``min(retry_base_s * 2**n, retry_max_s)`` seconds.
    on_failure
        Given the step's filled parameters, the service name and the error, the results that
        record the failure (sent like a handler's); ``None``: failures are only dead-lettered.
    batch_handler
        Optional: ``batch_handler([(message, context), ...])`` does the work of several
        messages at once (the writer: one transaction for all) and returns one result per
        message, or ``None`` when none has results. A worker with ``prefetch > 1`` hands it
        the messages already waiting; should it raise, each message is run again on its own
        through ``handler``, so that a bad one fails alone (see :class:`~cryolive.messaging.
        worker.Worker`). It must be all-or-nothing (one transaction), since its messages are
        redone.
    """

    name: str
    message: type[M]
    handler: Callable[[M, Context], HandlerResult]
    max_attempts: int = 5
    retry_base_s: float = 1.0
    retry_max_s: float = 300.0
    on_failure: FailureHook | None = None
    batch_handler: BatchHandler | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("name: must not be empty")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts: must be >= 1, got {self.max_attempts}")
        if self.retry_base_s < 0 or self.retry_max_s < self.retry_base_s:
            raise ValueError("retry_base_s, retry_max_s: need 0 <= retry_base_s <= retry_max_s")

    def retry_delay_s(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt + 1``."""
        return float(min(self.retry_base_s * 2**attempt, self.retry_max_s))


class Registry:
    """Services by name. Built by a function, never at import time."""

    def __init__(self, services: Sequence[Service[Any]] = ()) -> None:
        self._services: dict[str, Service[Any]] = {}
        for service in services:
            self.add(service)

    def add(self, service: Service[Any]) -> None:
        if service.name in self._services:
            raise ValueError(f"service: {service.name!r} is already registered")
        self._services[service.name] = service

    def __contains__(self, name: object) -> bool:
        return name in self._services

    def __getitem__(self, name: str) -> Service[Any]:
        try:
            return self._services[name]
        except KeyError:
            known = ", ".join(sorted(self._services)) or "none"
            raise KeyError(f"service: unknown service {name!r} (known: {known})") from None

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._services))
