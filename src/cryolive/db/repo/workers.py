"""Workers' heartbeats (``cryolive_worker_heartbeat``): each worker process reports itself at
most every 30 s; the staff area reads which are alive, when each last reported, and how often
a host's workers on a queue have started again."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from cryolive.db.models import WorkerHeartbeat

ALIVE_WITHIN = dt.timedelta(seconds=90)  # three missed beats: silent
RESTARTS_WITHIN = dt.timedelta(hours=24)  # restarts counted over this window
FORGET_AFTER = dt.timedelta(days=7)  # rows of processes silent this long are deleted


def record_beat(
    session: Session,
    *,
    service: str,
    queues: Sequence[str],
    consumers: int,
    host: str,
    pid: int,
    started_at: dt.datetime,
    at: dt.datetime,
    handled: int,
) -> None:
    """Record that a worker process is alive (naive UTC times); idempotent per process."""
    if not service or not queues or pid < 0 or consumers < 1 or handled < 0:
        raise ValueError("a heartbeat needs a service, its queues, a pid, consumers >= 1")
    key = f"{host}/{service}/{pid}"[:255]
    row = session.get(WorkerHeartbeat, key)
    if row is None:
        session.add(
            WorkerHeartbeat(
                worker=key,
                service=service[:64],
                queues=",".join(queues)[:255],
                consumers=consumers,
                host=host[:128],
                pid=pid,
                started_at=started_at,
                beat_at=at,
                handled=handled,
            )
        )
        session.execute(
            sa.delete(WorkerHeartbeat).where(WorkerHeartbeat.beat_at < at - FORGET_AFTER)
        )
    else:
        row.beat_at, row.handled, row.started_at = at, handled, started_at


@dataclass(frozen=True)
class WorkerRow:
    """The newest process of a service on a host, as it last reported itself."""

    service: str
    queues: list[str]
    consumers: int
    host: str
    pid: int
    started_at: dt.datetime
    beat_at: dt.datetime
    handled: int
    alive: bool  # reported within ALIVE_WITHIN
    restarts: int  # earlier processes of this service on this host started in RESTARTS_WITHIN


def worker_health(session: Session, *, now: dt.datetime) -> list[WorkerRow]:
    """Per (service, host), its newest process, by service then host (``now``: naive UTC)."""
    rows = session.scalars(
        sa.select(WorkerHeartbeat)
        .where(WorkerHeartbeat.beat_at >= now - FORGET_AFTER)
        .order_by(WorkerHeartbeat.started_at, WorkerHeartbeat.worker)
    ).all()
    newest: dict[tuple[str, str], WorkerHeartbeat] = {}
    earlier: dict[tuple[str, str], int] = {}
    for row in rows:
        group = (row.service, row.host)
        if group in newest and row.started_at >= now - RESTARTS_WITHIN:
            earlier[group] = earlier.get(group, 0) + 1
        newest[group] = row
    return [
        WorkerRow(
            service=r.service,
            queues=r.queues.split(","),
            consumers=r.consumers,
            host=r.host,
            pid=r.pid,
            started_at=r.started_at,
            beat_at=r.beat_at,
            handled=r.handled,
            alive=r.beat_at >= now - ALIVE_WITHIN,
            restarts=earlier.get(group, 0),
        )
        for group, r in sorted(newest.items())
    ]
