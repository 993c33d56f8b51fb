"""The broker as the staff area sees it: which transport, and which queues to show.

RabbitMQ (``settings.broker_url`` = ``amqp://…``) is reached from any process, so the app
opens its own transport. The embedded broker lives inside the pipeline's process: only an
app started in that process (``cryolive demo``) can be handed its transport; otherwise the
staff area says there is no broker to show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from cryolive.config import Settings
from cryolive.messaging.connect import open_transport
from cryolive.messaging.embedded import EmbeddedTransport
from cryolive.messaging.transport import Transport


@dataclass(frozen=True)
class BrokerView:
    transport: Transport | None
    kind: str  # "embedded", "rabbitmq" or "" (none)
    queues: tuple[str, ...]
    # The embedded broker of another process, seen through its dead-letter journal: dead
    # letters can be listed and discarded, not re-injected (its queues are in its memory).
    journal_only: bool = False

    def require(self, *, action: str = "") -> Transport:
        if self.transport is None:
            raise HTTPException(503, NO_BROKER)
        if self.journal_only and action == "reinject":
            raise HTTPException(503, JOURNAL_ONLY)
        return self.transport

    def known(self, queue: str) -> str:
        if queue not in self.queues:
            raise HTTPException(404, f"No queue {queue!r} (known: {', '.join(self.queues)}).")
        return queue


NO_BROKER = (
    "No broker connected: the embedded broker lives inside the pipeline's process (cryolive "
    "demo shows it); set broker_url to amqp://… to see RabbitMQ's queues here."
)


JOURNAL_ONLY = (
    "The embedded broker lives in the pipeline's process: its dead letters are listed from "
    "their journal, but re-injecting needs that process (cryolive demo) or RabbitMQ."
)


def recipe_queues() -> tuple[str, ...]:
    """The queues of the recipe the pipeline runs (``spa-preprocess``), in step order."""
    from cryolive.messaging.recipe import load_recipe, recipe_path

    recipe = load_recipe(recipe_path("spa-preprocess"))
    return tuple(dict.fromkeys(step.queue for step in recipe.steps.values()))


def broker_view(
    settings: Settings, *, transport: Transport | None, queues: tuple[str, ...] | None
) -> BrokerView:
    """The view for an app: the transport given, else RabbitMQ's when configured."""
    if transport is None and not settings.embedded_broker:
        transport = open_transport(
            settings.broker_url,
            prefix=settings.broker_prefix,
            delivery_limit=settings.broker_delivery_limit,
            reconnect_timeout_s=5.0,
        )
    journal_only = transport is None and settings.embedded_broker
    if journal_only:
        transport = open_transport(
            settings.broker_url,
            prefix=settings.broker_prefix,
            journal=settings.dead_letter_journal,
        )
    if transport is None:
        kind = ""
    else:
        kind = "embedded" if isinstance(transport, EmbeddedTransport) else "rabbitmq"
    shown = recipe_queues() if queues is None else queues
    return BrokerView(transport, kind, shown, journal_only=journal_only)


def get_broker(request: Request) -> BrokerView:
    view: BrokerView = request.app.state.broker
    return view


Broker = Annotated[BrokerView, Depends(get_broker)]
