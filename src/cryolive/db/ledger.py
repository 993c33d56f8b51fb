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
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from ispyb.sqlalchemy import AutoProcProgram
from sqlalchemy.orm import Session, sessionmaker

from cryolive.db.models import HeldWork, WorkItem


@dataclass(frozen=True)
class DueWork:
    """Open work past its time, as :meth:`SqlWorkLedger.overdue` returns it: the shape the
    reconciler reads (``cryolive.messaging.reconcile.Due``), defined here because the database
    does not import messaging.

    Attributes: ``key`` (work key), ``queue`` (where it was sent), ``envelope`` (the message as
    dispatched, JSON bytes), ``dispatched_at`` (Unix time of the latest dispatch, s),
    ``dispatches`` (how often it was sent so far).
    """

    key: str
    queue: str
    envelope: bytes
    dispatched_at: float
    dispatches: int


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


def reopen(session: Session, *, key: str, now: float) -> tuple[str, bytes] | None:
    """Open again the closed work ``key`` (a movie tried once more, see
    :mod:`cryolive.db.repo.retries`), dispatched at ``now``: its (queue, message) to publish
    after the commit, or None when there is no such work."""
    item = session.get(WorkItem, key)
    if item is None:
        return None
    item.done_at, item.outcome = None, None
    item.dispatched_at, item.attempts = _utc(now), item.attempts + 1
    session.flush()
    return item.queue, item.message.encode()


WorkOutcome = Literal["done", "failed", "cancelled"]


def complete(
    session: Session, *, keys: Sequence[str], now: float, outcome: WorkOutcome = "done"
) -> None:
    """The work of ``keys`` has ended (its results or its failure are recorded, or its run was
    stopped): close the items still open, noting how they ended. The reconciler never re-sends
    a closed item."""
    if keys:
        session.execute(
            sa.update(WorkItem)
            .where(WorkItem.key.in_(list(keys)), WorkItem.done_at.is_(None))
            .values(done_at=_utc(now), outcome=outcome)
        )


def cancel_program(session: Session, *, program_id: int, now: float) -> int:
    """Close every open item of one run (AutoProcProgram) as cancelled; return how many."""
    result = session.execute(
        sa.update(WorkItem)
        .where(WorkItem.key.startswith(f"movie:{program_id}:"), WorkItem.done_at.is_(None))
        .values(done_at=_utc(now), outcome="cancelled")
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def outcomes(session: Session, *, program_id: int) -> dict[str, int]:
    """How one run's work items stand: counts by outcome ("open" for those not closed)."""
    rows = session.execute(
        sa.select(WorkItem.outcome, WorkItem.done_at.is_(None), sa.func.count())
        .where(WorkItem.key.startswith(f"movie:{program_id}:"))
        .group_by(WorkItem.outcome, WorkItem.done_at.is_(None))
    )
    counts: dict[str, int] = {}
    for outcome, is_open, n in rows:
        name = "open" if is_open else (outcome or "done")
        counts[name] = counts.get(name, 0) + int(n)
    return counts


def open_items(session: Session, *, program_id: int | None = None) -> int:
    """Work not yet done: all of it, or one run's (AutoProcProgram)."""
    query = sa.select(sa.func.count()).select_from(WorkItem).where(WorkItem.done_at.is_(None))
    if program_id is not None:
        query = query.where(WorkItem.key.startswith(f"movie:{program_id}:"))
    return int(session.scalar(query) or 0)


@dataclass(frozen=True)
class WorkHealth:
    """Whether work flows: what ``cryolive check`` reports.

    Attributes
    ----------
    open
        Work items not closed.
    looping
        Keys of open work dispatched more than ``loop_after`` times: it keeps coming back.
    stuck
        Keys of open work older than ``stuck_after_s`` while no work at all has closed for
        that long: queued or running with nothing progressing.
    """

    open: int
    looping: list[str]
    stuck: list[str]

    @property
    def healthy(self) -> bool:
        return not self.looping and not self.stuck


def work_health(
    session: Session, *, now: float, loop_after: int = 3, stuck_after_s: float = 1800.0
) -> WorkHealth:
    """Look for work that loops or is stuck (see :class:`WorkHealth`)."""
    is_open = WorkItem.done_at.is_(None)
    n_open = int(
        session.scalar(sa.select(sa.func.count()).select_from(WorkItem).where(is_open)) or 0
    )
    looping = list(
        session.scalars(
            sa.select(WorkItem.key)
            .where(is_open, WorkItem.attempts > loop_after)
            .order_by(WorkItem.key)
        )
    )
    since = _utc(now - stuck_after_s)
    progressing = session.scalar(
        sa.select(sa.func.count()).select_from(WorkItem).where(WorkItem.done_at >= since)
    )
    stuck: list[str] = []
    if not progressing:
        stuck = list(
            session.scalars(
                sa.select(WorkItem.key)
                .where(is_open, WorkItem.dispatched_at < since)
                .order_by(WorkItem.key)
            )
        )
    return WorkHealth(n_open, looping, stuck)


def _program_of(key: str) -> int | None:
    """The run (AutoProcProgram) of a work key made by :func:`work_key`."""
    kind, _, rest = key.partition(":")
    program = rest.partition(":")[0]
    return int(program) if kind == "movie" and program.isdigit() else None


def _ended(session: Session, programs: Sequence[int]) -> set[int]:
    if not programs:
        return set()
    rows = session.scalars(
        sa.select(AutoProcProgram.autoProcProgramId).where(
            AutoProcProgram.autoProcProgramId.in_(list(programs)),
            AutoProcProgram.processingStatus.is_not(None),
        )
    )
    return {int(r) for r in rows}


class SqlWorkLedger:
    """:class:`~cryolive.messaging.reconcile.WorkLedger` over ``cryolive_work_item``."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def overdue(self, older_than_s: float, *, now: float, limit: int) -> list[DueWork]:
        """Open work past its time, less that of runs that have ended (stopped by a user):
        that is closed as cancelled instead of being sent again. Work held for a paused
        collection is not due."""
        held = sa.select(HeldWork.key).where(HeldWork.key == WorkItem.key).exists()
        with self._sessions.begin() as session:
            rows = session.scalars(
                sa.select(WorkItem)
                .where(
                    WorkItem.done_at.is_(None),
                    WorkItem.dispatched_at < _utc(now - older_than_s),
                    ~held,
                )
                .order_by(WorkItem.dispatched_at)
                .limit(limit)
            ).all()
            programs = {_program_of(w.key) for w in rows} - {None}
            ended = _ended(session, sorted(p for p in programs if p is not None))
            for program in ended:
                cancel_program(session, program_id=program, now=now)
            return [
                DueWork(w.key, w.queue, w.message.encode(), _unix(w.dispatched_at), w.attempts)
                for w in rows
                if _program_of(w.key) not in ended
            ]

    def mark_dispatched(self, key: str, *, now: float) -> None:
        with self._sessions.begin() as session:
            session.execute(
                sa.update(WorkItem)
                .where(WorkItem.key == key)
                .values(dispatched_at=_utc(now), attempts=WorkItem.attempts + 1)
            )
