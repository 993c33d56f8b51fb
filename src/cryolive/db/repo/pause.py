"""Paused data collections and their held work.

A user pauses a collection (web, members only): the watcher keeps registering its movies and
recording their work in the ledger, but the work is held here instead of being published.
Resuming deletes the pause; the pipeline's next poll takes the held work and publishes it.
The reconciler leaves held work alone (:class:`cryolive.db.ledger.SqlWorkLedger`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from cryolive.db.models import HeldWork, PausedCollection, WorkItem


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def pause(session: Session, *, data_collection_id: int, login: str) -> bool:
    """Pause a collection's processing; False when it was paused already."""
    if session.get(PausedCollection, data_collection_id) is not None:
        return False
    session.add(PausedCollection(data_collection_id=data_collection_id, paused_by=login))
    session.flush()
    return True


def resume(session: Session, *, data_collection_id: int) -> bool:
    """Resume it (its held work goes out on the pipeline's next poll); False when it was not
    paused."""
    found = session.get(PausedCollection, data_collection_id)
    if found is None:
        return False
    session.delete(found)
    session.flush()
    return True


def paused(session: Session, *, data_collection_id: int) -> PausedCollection | None:
    return session.get(PausedCollection, data_collection_id)


def held_count(session: Session, *, data_collection_id: int) -> int:
    return int(
        session.scalar(
            sa.select(sa.func.count())
            .select_from(HeldWork)
            .where(HeldWork.data_collection_id == data_collection_id)
        )
        or 0
    )


def hold_if_paused(
    session: Session, *, data_collection_id: int, items: Sequence[tuple[str, str, bytes]]
) -> list[tuple[str, str, bytes]]:
    """Of new work (key, queue, message), hold all of it when the collection is paused and
    return what is to be published now (all of it when not paused)."""
    if not items or session.get(PausedCollection, data_collection_id) is None:
        return list(items)
    known = set(
        session.scalars(sa.select(HeldWork.key).where(HeldWork.key.in_([k for k, _, _ in items])))
    )
    session.add_all(
        HeldWork(key=k, data_collection_id=data_collection_id, queue=q, message=m.decode())
        for k, q, m in items
        if k not in known
    )
    session.flush()
    return []


def take_released(session: Session, *, limit: int = 5000) -> list[tuple[str, bytes]]:
    """Held work of collections no longer paused, removed from the holding table and marked
    dispatched now in the ledger: (queue, message) to publish after the commit (a crash in
    between leaves it to the reconciler)."""
    still = sa.select(PausedCollection.data_collection_id).where(
        PausedCollection.data_collection_id == HeldWork.data_collection_id
    )
    rows = session.scalars(
        sa.select(HeldWork).where(~still.exists()).order_by(HeldWork.held_at).limit(limit)
    ).all()
    if not rows:
        return []
    keys = [r.key for r in rows]
    session.execute(
        sa.update(WorkItem)
        .where(WorkItem.key.in_(keys), WorkItem.done_at.is_(None))
        .values(dispatched_at=_now())
    )
    out = [(r.queue, r.message.encode()) for r in rows]
    session.execute(sa.delete(HeldWork).where(HeldWork.key.in_(keys)))
    return out
