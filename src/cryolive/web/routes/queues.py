"""The staff area's view of the broker: queue depths and consumers, dead letters, and
re-injecting or discarding one dead letter (through :mod:`cryolive.messaging.dlq`)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi import Path as PathParam
from fastapi.responses import RedirectResponse

from cryolive.messaging import dlq
from cryolive.messaging.transport import BrokerUnavailable, Transport, dlq_name
from cryolive.web.broker import NO_BROKER, Broker, BrokerView
from cryolive.web.deps import CsrfChecked, StaffUser
from cryolive.web.models import DeadLetter, DeadLetterDone, Queues, QueueStats

router = APIRouter()
Action = Literal["reinject", "discard"]
Newest = Annotated[int, Query(ge=1, le=100, description="How many of the newest to list.")]
QueueName = Annotated[str, PathParam(min_length=1, max_length=200, description="A queue.")]
MessageId = Annotated[str, PathParam(min_length=1, max_length=200, description="A message.")]
SCAN = 100  # dead letters read per queue to find the newest (they stay in place)


def queue_table(view: BrokerView, *, newest: int) -> Queues:
    """Each queue's ready messages and consumers, its dead letters' count and newest few."""
    if view.transport is None:
        return Queues(broker=None, message=NO_BROKER, queues=[])
    transport = view.transport
    try:
        rows = [_queue_row(transport, queue, newest=newest) for queue in view.queues]
    except (BrokerUnavailable, OSError) as exc:  # the page still shows the rest
        return Queues(broker=view.kind, message=f"The broker is unreachable: {exc}", queues=[])
    return Queues(broker=view.kind, message="", queues=rows)


def _queue_row(transport: Transport, queue: str, *, newest: int) -> QueueStats:
    stats = transport.stats(queue)
    dead = transport.stats(dlq_name(queue)).ready
    letters = dlq.list_dead(transport, queue, limit=SCAN)[-newest:][::-1] if dead else []
    return QueueStats(
        queue=queue,
        ready=stats.ready,
        consumers=stats.consumers,
        dead=dead,
        newest_dead=[DeadLetter.model_validate(d) for d in letters],
    )


@router.get("/api/staff/queues", tags=["staff"])
def queues_api(user: StaffUser, broker: Broker, newest: Newest = 5) -> Queues:
    """Per queue of the pipeline: messages ready, consumers (workers), dead letters and the
    newest few of them with their reasons. ``broker`` is null when none is connected."""
    table = queue_table(broker, newest=newest)
    if table.broker and table.message:
        raise HTTPException(503, table.message)
    return table


def _act(broker: BrokerView, queue: str, message_id: str, action: Action) -> int:
    transport = broker.require(action=action)
    broker.known(queue)
    try:
        if action == "reinject":
            done = dlq.reinject(transport, queue, message_ids=[message_id])
        else:
            done = dlq.discard(transport, queue, message_ids=[message_id])
    except (BrokerUnavailable, OSError) as exc:
        raise HTTPException(503, f"The broker is unreachable: {exc}") from exc
    if done == 0:
        raise HTTPException(404, f"No dead letter {message_id!r} in {queue}.")
    return done


@router.post(
    "/api/staff/queues/{queue}/dead/{message_id}/{action}",
    tags=["staff"],
    dependencies=[CsrfChecked],
    response_model_exclude_none=True,
)
def dead_letter_api(
    queue: QueueName, message_id: MessageId, action: Action, user: StaffUser, broker: Broker
) -> DeadLetterDone:
    """Send one dead letter back to its queue (attempts reset) or drop it."""
    done = _act(broker, queue, message_id, action)
    if action == "reinject":
        return DeadLetterDone(reinjected=done)
    return DeadLetterDone(discarded=done)


@router.post(
    "/staff/queues/{queue}/dead/{message_id}/{action}",
    include_in_schema=False,
    dependencies=[CsrfChecked],
)
def dead_letter_form(
    queue: QueueName, message_id: MessageId, action: Action, user: StaffUser, broker: Broker
) -> RedirectResponse:
    _act(broker, queue, message_id, action)
    return RedirectResponse("/staff#queues", status_code=303)
