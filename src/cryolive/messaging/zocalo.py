"""Zocalo interoperability: service names of Diamond's recipes, and python-workflows' messages.

**Service map.** A Zocalo recipe names each step's service by its class (``MotionCorr``,
``CTFFind``, ``EMISPyB``). :data:`SERVICE_MAP` says which cryolive service does that work; a
facility extends or overrides it with the ``messaging.service_map`` setting (a name mapped to
``""`` is external). A step whose service maps to nothing is *external*: another worker on the
same broker serves it.

**Messages.** python-workflows wraps each message of a recipe: the header
``workflows-recipe`` is true and the JSON body is::

    {"recipe": {...the whole recipe, Zocalo format...},
     "recipe-pointer": 2,          # the step this message is for
     "recipe-path": [1],           # the steps it came through
     "environment": {...},         # values carried unchanged along the recipe
     "payload": ...}               # what the previous step sent

:class:`ZocaloTransport` wraps a cryolive transport so that a cryolive worker takes such
messages (turned into an :class:`~cryolive.messaging.envelope.Envelope` on the way in, the
step's service mapped to cryolive's) and sends its outputs on in the same form, as the recipe
says. :func:`start_zocalo` starts a recipe (cryolive's or Zocalo's) in that form, so that
workflows-based services can take its steps.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from cryolive.messaging._zocalo_params import (
    PARAMETER_MAP,
    Translation,
    parameter_map,
    step_parameters,
    translate,
)
from cryolive.messaging.dispatch import envelope_for, send_to_step
from cryolive.messaging.envelope import Envelope, MalformedMessage
from cryolive.messaging.recipe import Recipe, RecipeError, fill_recipe, recipe_from_zocalo
from cryolive.messaging.transport import DeadLetter, Delivery, QueueStats, Transport

__all__ = [
    "HEADER",
    "PARAMETER_MAP",
    "SERVICE_MAP",
    "Translation",
    "ZocaloMessage",
    "ZocaloTransport",
    "cryolive_service",
    "envelope_from_zocalo",
    "is_zocalo",
    "parameter_map",
    "parse_zocalo",
    "recipe_to_zocalo",
    "service_map",
    "start_zocalo",
    "step_parameters",
    "translate",
]

log = logging.getLogger(__name__)

HEADER = "workflows-recipe"
_TRUE = {True, "True", "true", "1"}  # 1 == True

# Diamond's cryoem-services class names -> cryolive services (the rest are external).
SERVICE_MAP: dict[str, str] = {
    "MotionCorr": "motioncorr",
    "CTFFind": "ctf",
    "IceBreaker": "ice",
    "CrYOLO": "pick",
    "Class2D": "class2d",
    "Class2DWrapper": "class2d",
    "EMISPyB": "writer",
}


def service_map(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The built-in table with a facility's ``overrides`` over it."""
    return {**SERVICE_MAP, **(overrides or {})}


def cryolive_service(name: str, table: Mapping[str, str], known: set[str]) -> str | None:
    """The cryolive service that runs a step of service ``name``, or None when it is external.

    A name cryolive knows itself (``ctf``) is its own; otherwise ``table`` decides.
    """
    if name in known:
        return name
    mapped = table.get(name)
    return mapped or None


def is_zocalo(headers: Mapping[str, Any]) -> bool:
    """Whether a message is wrapped by python-workflows' recipe wrapper."""
    value = headers.get(HEADER)
    return value in _TRUE if isinstance(value, str | bool | int) else False


def recipe_to_zocalo(recipe: Recipe) -> tuple[dict[str, Any], dict[str, int]]:
    """The recipe in the Zocalo format, and the number each step id got there.

    Numeric step ids keep their number; others are numbered in order after the largest one.
    A step's only output ``default`` becomes an unnamed output (what ``RecipeWrapper.send``
    sends to); named outputs stay. ``parameters`` as they are (fill them first:
    :func:`fill_recipe`).
    """
    numbers: dict[str, int] = {sid: int(sid) for sid in recipe.steps if sid.isdigit()}
    following = max(numbers.values(), default=0)
    for sid in recipe.steps:
        if sid not in numbers:
            following += 1
            numbers[sid] = following
    data: dict[str, Any] = {}
    for sid, step in recipe.steps.items():
        raw: dict[str, Any] = {"service": step.service}
        if step.queue:
            raw["queue"] = step.queue
        if step.topic:
            raw["topic"] = step.topic
        if step.parameters:
            raw["parameters"] = step.parameters
        if step.job_parameters:
            raw["job_parameters"] = step.job_parameters
        if set(step.outputs) == {"default"}:  # unnamed: what a workflows service's send() uses
            raw["output"] = [numbers[t] for t in step.outputs["default"]]
        elif step.outputs:
            raw["output"] = {
                name: [numbers[t] for t in targets] for name, targets in step.outputs.items()
            }
        if step.error:
            raw["error"] = [numbers[t] for t in step.error]
        data[str(numbers[sid])] = raw
    data["start"] = [[numbers[s], recipe.start_payloads.get(s, [])] for s in recipe.start]
    if recipe.error:
        data["error"] = [numbers[t] for t in recipe.error]
    return data, numbers


@dataclass(frozen=True)
class ZocaloMessage:
    """One python-workflows recipe message, as it came."""

    recipe: dict[str, Any]
    pointer: int
    path: list[int]
    environment: dict[str, Any]
    payload: Any

    def body(self) -> bytes:
        return json.dumps(
            {
                "recipe": self.recipe,
                "recipe-pointer": self.pointer,
                "recipe-path": self.path,
                "environment": self.environment,
                "payload": self.payload,
            },
            default=str,
        ).encode()

    def to(self, target: int, payload: Any) -> ZocaloMessage:
        """The message this one's step sends on to step ``target``."""
        return ZocaloMessage(
            self.recipe, target, [*self.path, self.pointer], self.environment, payload
        )


def parse_zocalo(body: bytes) -> ZocaloMessage:
    """Read a python-workflows recipe message body.

    Raises
    ------
    MalformedMessage
        When the body is not JSON or lacks the recipe wrapper's fields.
    """
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise MalformedMessage(f"body: a Zocalo message must be JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise MalformedMessage("body: a Zocalo message must be a JSON object")
    missing = [k for k in ("recipe", "recipe-pointer") if k not in data]
    if missing:
        raise MalformedMessage(f"body: a Zocalo message needs {', '.join(missing)}")
    recipe, pointer = data["recipe"], data["recipe-pointer"]
    path, environment = data.get("recipe-path", []), data.get("environment", {})
    if not isinstance(recipe, dict) or not isinstance(environment, dict):
        raise MalformedMessage("body: 'recipe' and 'environment' must be objects")
    if (
        isinstance(pointer, bool)
        or not isinstance(pointer, int | str)
        or not str(pointer).isdigit()
    ):
        raise MalformedMessage(f"body: 'recipe-pointer' must be a step number, got {pointer!r}")
    if not isinstance(path, list):
        raise MalformedMessage("body: 'recipe-path' must be a list")
    return ZocaloMessage(recipe, int(pointer), path, environment, data.get("payload"))


def envelope_from_zocalo(
    message: ZocaloMessage,
    *,
    table: Mapping[str, str],
    known: set[str],
    parameters: Mapping[str, str] | None = None,
    models: Mapping[str, type[BaseModel]] | None = None,
) -> Envelope:
    """The cryolive envelope for a Zocalo message: its recipe read (services mapped by
    ``table`` to those in ``known``, the parameters of their steps renamed by the
    ``parameters`` table to cryolive's fields, ``$name`` references filled from the
    environment), its environment and payload as the step's values.

    With the cryolive services' message ``models``, a step's run sections are completed from
    cryolive's defaults and the fields Diamond's step does not give are taken from the
    environment and the previous step's payload (:func:`step_parameters`). Parameter names
    the table does not know are logged and passed on as they are: the service's message model
    refuses them by name (the message is dead-lettered saying so).

    Raises
    ------
    MalformedMessage
        When the recipe is not a valid Zocalo recipe or the pointer is not one of its steps.
    """
    try:
        recipe = recipe_from_zocalo(
            message.recipe, name=str(message.environment.get("ID", "zocalo"))
        )
    except RecipeError as exc:
        raise MalformedMessage(f"body.recipe: {exc}") from exc
    payload = message.payload if isinstance(message.payload, dict) else {}
    if message.payload not in (None, [], {}) and not isinstance(message.payload, dict):
        payload = {"payload": message.payload}
    values = {**message.environment, **payload}
    names = parameter_map(parameters)
    steps = {}
    for sid, step in recipe.steps.items():
        runner = cryolive_service(step.service, table, known)
        if runner is None:
            steps[sid] = step
            continue
        model = (models or {}).get(runner)
        found = translate(step.service, step.parameters, table=names, model=model)
        if found.unknown and sid == str(message.pointer):
            log.warning(
                "step %s (%s -> %s): parameters unknown to messaging.parameter_map: %s",
                sid,
                step.service,
                runner,
                ", ".join(found.unknown),
            )
        fields = step_parameters(found, model, values) if model is not None else found.fields
        steps[sid] = step.model_copy(update={"service": runner, "parameters": fields})
    # `$name` references: values earlier steps stored in the environment
    recipe = fill_recipe(recipe.model_copy(update={"steps": steps}), values, strict=False)
    try:
        return envelope_for(recipe, str(message.pointer), values, payload=payload)
    except ValueError as exc:
        raise MalformedMessage(f"body.recipe-pointer: {exc}") from exc


def start_zocalo(
    transport: Transport,
    recipe: Recipe,
    values: Mapping[str, Any],
    *,
    environment: Mapping[str, Any] | None = None,
) -> list[ZocaloMessage]:
    """Start ``recipe`` in python-workflows' form: one message per start step, placeholders
    filled from ``values``. Every placeholder of a Zocalo recipe must be given
    (:class:`~cryolive.messaging.recipe.MissingParameters` otherwise); those of a cryolive
    recipe may be filled later, from upstream results, by the cryolive service of the step.

    ``environment`` is carried along unchanged (default: ``values``, so that cryolive services
    downstream can fill their placeholders).
    """
    filled = fill_recipe(recipe, values, strict=recipe.origin == "zocalo")
    data, numbers = recipe_to_zocalo(filled)
    env = dict(values if environment is None else environment)
    sent = []
    for sid in filled.start:
        message = ZocaloMessage(data, numbers[sid], [], env, filled.start_payloads.get(sid, []))
        step = filled.steps[sid]
        send_to_step(transport, step, message.body(), headers={HEADER: "True"})
        sent.append(message)
    return sent


def _publish(transport: Transport, queue: str, message: ZocaloMessage) -> None:
    transport.publish(queue, message.body(), headers={HEADER: "True"})


class ZocaloTransport:
    """A transport through which a cryolive worker takes python-workflows recipe messages as
    well as its own.

    A delivery wrapped by the recipe wrapper reaches the worker as an envelope; what the worker
    publishes for it (its outputs) leaves in the wrapper's form, to the queues the Zocalo recipe
    names; a dead letter keeps the body as it came. Everything else passes through unchanged.

    Parameters
    ----------
    inner
        The broker.
    known
        Names of the cryolive services (a step whose service is one of them, or maps to one by
        ``table``, is cryolive's).
    table
        Zocalo service name -> cryolive service name (over :data:`SERVICE_MAP`).
    parameters
        Diamond's parameter name -> cryolive field (over :data:`PARAMETER_MAP`).
    models
        cryolive service name -> its message model (sections and missing fields completed,
        see :func:`envelope_from_zocalo`).
    """

    def __init__(
        self,
        inner: Transport,
        *,
        known: set[str],
        table: Mapping[str, str] | None = None,
        parameters: Mapping[str, str] | None = None,
        models: Mapping[str, type[BaseModel]] | None = None,
    ) -> None:
        self.inner = inner
        self.known = set(known)
        self.table = service_map(table)
        self.parameters = parameter_map(parameters)
        self.models = dict(models or {})
        self._local = threading.local()

    # -- consuming --------------------------------------------------------------------------

    def consume(
        self,
        queue: str,
        on_message: Callable[[Delivery], None],
        *,
        prefetch: int,
        stop: threading.Event,
    ) -> None:
        def wrapped(delivery: Delivery) -> None:
            if not is_zocalo(delivery.headers):
                on_message(delivery)
                return
            try:
                message = parse_zocalo(delivery.body)
                envelope = envelope_from_zocalo(
                    message,
                    table=self.table,
                    known=self.known,
                    parameters=self.parameters,
                    models=self.models,
                )
            except MalformedMessage as exc:
                self.inner.dead_letter(queue, delivery.body, reason=str(exc))
                delivery.ack()
                return
            self._local.current = (envelope.message_id, message, delivery.body)
            try:
                on_message(
                    Delivery(
                        envelope.to_bytes(),
                        delivery.headers,
                        delivery.delivery_count,
                        delivery.ack,
                        delivery.requeue,
                    )
                )
            finally:
                self._local.current = None

        self.inner.consume(queue, wrapped, prefetch=prefetch, stop=stop)

    # -- publishing -------------------------------------------------------------------------

    def _in_hand(self) -> tuple[str, ZocaloMessage, bytes] | None:
        current: tuple[str, ZocaloMessage, bytes] | None = getattr(self._local, "current", None)
        return current

    def _onward(self, body: bytes) -> ZocaloMessage | None:
        """The Zocalo message to send for ``body``, an output of the Zocalo step in hand; None
        for anything else."""
        current = self._in_hand()
        if current is None:
            return None
        try:
            envelope = Envelope.from_bytes(body)
        except MalformedMessage:
            return None
        if envelope.recipe.origin != "zocalo":
            return None
        return current[1].to(int(envelope.step), envelope.payload)

    def publish(
        self,
        queue: str,
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        delay_s: float = 0.0,
    ) -> None:
        onward = None if delay_s else self._onward(body)
        if onward is not None:
            _publish(self.inner, queue, onward)
            return
        self.inner.publish(queue, body, headers=headers, delay_s=delay_s)

    def broadcast(
        self, topic: str, body: bytes, *, headers: Mapping[str, str] | None = None
    ) -> None:
        onward = self._onward(body)
        if onward is not None:
            self.inner.broadcast(topic, onward.body(), headers={HEADER: "True"})
            return
        self.inner.broadcast(topic, body, headers=headers)

    def subscribe(self, topic: str, queue: str) -> None:
        self.inner.subscribe(topic, queue)

    def dead_letter(self, queue: str, body: bytes, *, reason: str) -> None:
        current = self._in_hand()
        if current is not None:
            message_id, _, original = current
            try:
                if Envelope.from_bytes(body).message_id == message_id:
                    body = original  # the message as the Zocalo side sent it
            except MalformedMessage:
                pass
        self.inner.dead_letter(queue, body, reason=reason)

    # -- the rest passes through ------------------------------------------------------------

    def depth(self, queue: str) -> int:
        return self.inner.depth(queue)

    def stats(self, queue: str) -> QueueStats:
        return self.inner.stats(queue)

    def dead_letters(self, queue: str, *, limit: int = 100) -> list[DeadLetter]:
        return self.inner.dead_letters(queue, limit=limit)

    def reinject(
        self,
        queue: str,
        *,
        select: Callable[[DeadLetter], bool],
        rewrite: Callable[[bytes], bytes],
    ) -> int:
        return self.inner.reinject(queue, select=select, rewrite=rewrite)

    def discard(self, queue: str, *, select: Callable[[DeadLetter], bool]) -> int:
        return self.inner.discard(queue, select=select)

    def purge(self, queue: str) -> int:
        return self.inner.purge(queue)

    def delete_declared(self) -> None:
        self.inner.delete_declared()

    def close(self) -> None:
        self.inner.close()
