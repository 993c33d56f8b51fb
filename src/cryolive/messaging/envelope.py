"""The message envelope every cryolive message travels in."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cryolive.messaging.recipe import WIRE, Recipe

JsonValue = Any


class MalformedMessage(ValueError):
    """A message body that is not a valid :class:`Envelope`."""


class Envelope(BaseModel):
    """One unit of work on its way to a service.

    The recipe travels with the message (as in Zocalo), so a worker needs nothing but the
    envelope to know where its result goes next.

    Attributes
    ----------
    recipe
        The whole recipe the work belongs to.
    step
        Id of the recipe step this message is for.
    parameters
        Values the step's ``{placeholders}`` are filled from: the values the recipe was
        started with, plus the fields of every upstream result.
    payload
        The result of the step that sent this message (empty for a start step).
    key
        Idempotency key of the work: the same work always has the same key, so a
        redelivery or a re-dispatch can be recognised downstream.
    attempt
        0 for a first try; incremented by each delayed retry.
    message_id
        Unique per published message (a retry keeps it).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    recipe: Recipe
    step: str
    parameters: dict[str, JsonValue] = Field(default_factory=dict)
    payload: dict[str, JsonValue] = Field(default_factory=dict)
    key: str
    attempt: int = Field(default=0, ge=0)
    message_id: str = Field(default_factory=lambda: new_message_id())

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, body: bytes) -> Envelope:
        """Parse a message body; raise :class:`MalformedMessage` with the reason if invalid.

        The recipe's graph is not re-checked here (it was when the recipe started, and every
        message carries it); the worker dead-letters a message whose routing is broken.
        """
        try:
            return cls.model_validate_json(body, context={WIRE: True})
        except ValidationError as exc:
            raise MalformedMessage(f"body: not a cryolive envelope: {exc}") from exc


class _MessageIds:
    """Unique message ids without a system call each: 16 random hex digits drawn once per
    process (re-drawn in a forked child) and a counter (``os.urandom`` cost ~0.1 ms a call
    here, a third of a hop)."""

    def __init__(self) -> None:
        self._pid = -1
        self._prefix = ""
        self._counter = itertools.count()

    def next(self) -> str:
        if self._pid != os.getpid():
            self._pid, self._prefix = os.getpid(), os.urandom(8).hex()
            self._counter = itertools.count()
        return f"{self._prefix}{next(self._counter):016x}"


_IDS = _MessageIds()


def new_message_id() -> str:
    """32 hex digits: a per-process random prefix and a counter."""
    return _IDS.next()


def work_key(recipe_name: str, step: str, service: str, parameters: dict[str, JsonValue]) -> str:
    """Deterministic idempotency key of one unit of work.

    Parameters
    ----------
    recipe_name, step, service
        Where the work sits in its recipe.
    parameters
        The step's filled parameters (they name the input, e.g. the movie, and the settings).

    Returns
    -------
    str
        ``"<service>:<24 hex digits>"``; equal inputs always give the same key.
    """
    canonical = json.dumps(
        {"recipe": recipe_name, "step": step, "parameters": parameters},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return f"{service}:{hashlib.sha256(canonical.encode()).hexdigest()[:24]}"
