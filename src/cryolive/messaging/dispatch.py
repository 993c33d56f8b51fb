"""Building envelopes: starting a recipe and sending a result on to the next steps.

A step is reached by its queue, or by its topic (Zocalo's topic-only steps: the message is
broadcast, and every service subscribed to the topic gets a copy, :func:`subscription_queue`);
a step with both gets both, as python-workflows sends them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from cryolive.messaging.envelope import Envelope, new_message_id, work_key
from cryolive.messaging.recipe import Recipe, Step, fill
from cryolive.messaging.transport import Transport


def _fill_or_keep(template: Any, values: Mapping[str, Any]) -> Any:
    """Fill placeholders, keeping the template where a value is missing (the receiving step
    reports the missing value; the key stays deterministic either way)."""
    try:
        return fill(template, values)
    except KeyError:
        if isinstance(template, dict):
            return {k: _fill_or_keep(v, values) for k, v in template.items()}
        if isinstance(template, list):
            return [_fill_or_keep(v, values) for v in template]
        return template


def envelope_for(
    recipe: Recipe,
    step_id: str,
    values: Mapping[str, Any],
    *,
    payload: Mapping[str, Any] | None = None,
    _trusted: bool = False,
) -> Envelope:
    """The envelope for ``step_id`` of ``recipe``, its key derived from the filled parameters.

    Parameters
    ----------
    recipe
        The recipe the step belongs to.
    step_id
        Id of the step the message is for.
    values
        Values for the step's placeholders (recipe start values plus upstream results).
    payload
        The upstream result, if any.
    """
    if step_id not in recipe.steps:
        raise ValueError(f"step_id: {step_id!r} is not a step of recipe {recipe.name!r}")
    step = recipe.steps[step_id]
    filled = _fill_or_keep(step.parameters, values)
    fields: dict[str, Any] = {
        "recipe": recipe,
        "step": step_id,
        "parameters": dict(values),
        "payload": dict(payload or {}),
        "key": work_key(recipe.name, step_id, step.service, filled),
        "attempt": 0,
        "message_id": new_message_id(),
    }
    if _trusted:  # built from a validated envelope and a model dump: skip re-validation
        return Envelope.model_construct(**fields)
    return Envelope.model_validate(fields)


def send_to_step(
    transport: Transport, step: Step, body: bytes, *, headers: Mapping[str, str] | None = None
) -> None:
    """Send a message for ``step``: to its queue, and broadcast on its topic if it has one."""
    if step.queue:
        transport.publish(step.queue, body, headers=headers)
    if step.topic:
        transport.broadcast(step.topic, body, headers=headers)


def subscription_queue(topic: str, service: str) -> str:
    """The queue through which ``service`` takes the broadcasts of ``topic``: one per service,
    shared by its workers (each broadcast is handled once per subscribed service)."""
    return f"{topic}.{service}"


def start_recipe(transport: Transport, recipe: Recipe, values: Mapping[str, Any]) -> list[Envelope]:
    """Publish one message per start step of ``recipe``; return what was sent (with keys)."""
    sent = []
    for step_id in recipe.start:
        envelope = envelope_for(recipe, step_id, values)
        send_to_step(transport, recipe.steps[step_id], envelope.to_bytes())
        sent.append(envelope)
    return sent


def next_envelope(envelope: Envelope, target: str, result: BaseModel) -> Envelope:
    """The envelope carrying ``result`` from ``envelope``'s step on to step ``target``."""
    dumped = result.model_dump(mode="json")
    values = {**envelope.parameters, **dumped}
    return envelope_for(envelope.recipe, target, values, payload=dumped, _trusted=True)
