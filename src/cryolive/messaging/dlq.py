"""Dead letters: list, show, re-inject and purge (what ``cryolive dlq`` runs)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from cryolive.messaging.envelope import Envelope, MalformedMessage
from cryolive.messaging.transport import DeadLetter, Transport, dlq_name


@dataclass(frozen=True)
class DeadSummary:
    """One dead letter, as a person reads it."""

    message_id: str
    key: str
    recipe: str
    step: str
    attempt: int
    reason: str
    body: bytes


def summarise(letter: DeadLetter) -> DeadSummary:
    try:
        env = Envelope.from_bytes(letter.body)
    except MalformedMessage:
        return DeadSummary("?", "?", "?", "?", 0, letter.reason, letter.body)
    return DeadSummary(
        env.message_id, env.key, env.recipe.name, env.step, env.attempt, letter.reason, letter.body
    )


def list_dead(transport: Transport, queue: str, *, limit: int = 100) -> list[DeadSummary]:
    """Up to ``limit`` dead letters of ``queue``, left in place."""
    return [summarise(letter) for letter in transport.dead_letters(queue, limit=limit)]


def _fresh(body: bytes) -> bytes:
    """A dead envelope made new: attempt back to 0 (same key, same message id)."""
    try:
        env = Envelope.from_bytes(body)
    except MalformedMessage:
        return body
    return env.model_copy(update={"attempt": 0}).to_bytes()


def reinject(transport: Transport, queue: str, *, message_ids: Collection[str] = ()) -> int:
    """Send dead letters of ``queue`` back to it (all of them, or those in ``message_ids``),
    with their attempt count reset. Returns how many were sent back."""
    wanted = set(message_ids)

    def select(letter: DeadLetter) -> bool:
        return not wanted or summarise(letter).message_id in wanted

    return transport.reinject(queue, select=select, rewrite=_fresh)


def discard(transport: Transport, queue: str, *, message_ids: Collection[str]) -> int:
    """Drop the dead letters of ``queue`` whose message id is in ``message_ids``; return how
    many were dropped. Unlike :func:`reinject`, an empty ``message_ids`` drops nothing."""
    wanted = set(message_ids)
    if not wanted:
        raise ValueError("message_ids: name at least one dead letter to discard")
    return transport.discard(queue, select=lambda letter: summarise(letter).message_id in wanted)


def purge_dead(transport: Transport, queue: str) -> int:
    """Drop every dead letter of ``queue``; return how many there were."""
    return transport.purge(dlq_name(queue))
