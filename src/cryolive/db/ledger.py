"""The database's memory of work that is due: what the reconciler re-sends.

The watcher records a work item in the same transaction as the movie it registers, and only
then publishes the message; the writer closes the item when the movie's last result is written.
Work whose item is still open long after its dispatch was lost (a crashed process, a purged
queue, a publish that never happened) and is sent again. Implements the messaging layer's
``WorkLedger``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from cryolive.db.models import WorkItem
from cryolive.messaging.reconcile import DueWork


def work_key(auto_proc_program_id: int, movie_full_path: str) -> str:
    """The key of one movie's processing in one run (AutoProcProgram) of a recipe."""
    digest = hashlib.sha256(movie_full_path.encode()).hexdigest()[:40]
    return f"movie:{auto_proc_program_id}:{digest}"


def _utc(unix_s: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(unix_s, dt.UTC).replace(tzinfo=None)


def _unix(when: dt.datetime) -> float:
    return when.replace(tzinfo=dt.UTC).timestamp()


def expect(session: Session, *, items: Sequence[tuple[str, str, bytes]], now: float) -> list[str]:
    """Record work dispatched at ``now``: (key, queue, message) each; keys already known (open
    or done) are left alone. Returns the keys that are new: only those need publishing."""
    if not items:
        return []
    keys = [key for key, _, _ in items]
    known = set(session.scalars(sa.select(WorkItem.key).where(WorkItem.key.in_(keys))))
    new = [(k, q, m) for k, q, m in items if k not in known]
    session.add_all(
        WorkItem(key=k, queue=q, message=m.decode(), dispatched_at=_utc(now), attempts=1)
        for k, q, m in new
    )
    session.flush()
    return [key for key, _, _ in new]


def complete(session: Session, *, keys: Sequence[str], now: float) -> None:
    """The results of ``keys`` are recorded: close their items."""
    if keys:
        session.execute(
            sa.update(WorkItem)
            .where(WorkItem.key.in_(list(keys)), WorkItem.done_at.is_(None))
            .values(done_at=_utc(now))
        )


def open_items(session: Session, *, program_id: int | None = None) -> int:
    """Work not yet done: all of it, or one run's (AutoProcProgram)."""
    query = sa.select(sa.func.count()).select_from(WorkItem).where(WorkItem.done_at.is_(None))
    if program_id is not None:
        query = query.where(WorkItem.key.startswith(f"movie:{program_id}:"))
    return int(session.scalar(query) or 0)


class SqlWorkLedger:
    """:class:`~cryolive.messaging.reconcile.WorkLedger` over ``cryolive_work_item``."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def overdue(self, older_than_s: float, *, now: float, limit: int) -> list[DueWork]:
        with self._sessions() as session:
            rows = session.scalars(
                sa.select(WorkItem)
                .where(
                    WorkItem.done_at.is_(None), WorkItem.dispatched_at < _utc(now - older_than_s)
                )
                .order_by(WorkItem.dispatched_at)
                .limit(limit)
            ).all()
            return [
                DueWork(w.key, w.queue, w.message.encode(), _unix(w.dispatched_at), w.attempts)
                for w in rows
            ]

    def mark_dispatched(self, key: str, *, now: float) -> None:
        with self._sessions.begin() as session:
            session.execute(
                sa.update(WorkItem)
                .where(WorkItem.key == key)
                .values(dispatched_at=_utc(now), attempts=WorkItem.attempts + 1)
            )
