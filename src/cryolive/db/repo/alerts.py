"""Alerts: what the rules read (a collection's latest values, its pace, failures and backlog),
the alerts' occurrences with their history, and each visit's opt-in and recipients."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from ispyb.sqlalchemy import (
    CTF,
    BLSession,
    DataCollection,
    DataCollectionGroup,
    MotionCorrection,
    Movie,
    ParticlePicker,
    Person,
    Proposal,
    RelativeIceThickness,
    SessionHasPerson,
)
from sqlalchemy.orm import Session

from cryolive.db.models import Alert, HeldWork, VisitAlerts, WorkItem
from cryolive.db.repo.browse import EM_BEAMLINES
from cryolive.db.repo.series import _job_programs, programs


@dataclass(frozen=True)
class LiveCollection:
    """A data collection of a visit that is on now."""

    data_collection_id: int
    session_id: int
    visit: str
    directory: str
    last_movie: dt.datetime | None


@dataclass(frozen=True)
class AlertRow:
    alert_id: int
    rule: str
    key: str
    session_id: int | None
    data_collection_id: int | None
    message: str
    raised_at: dt.datetime
    cleared_at: dt.datetime | None
    delivery: str


def live_collections(
    session: Session, *, now: dt.datetime, beamlines: Sequence[str] = ()
) -> list[LiveCollection]:
    """The data collections of visits under way at ``now`` (naive UTC): started, not ended,
    on the microscopes ``beamlines`` (default: ISPyB's EM names; a visit without a microscope
    name, as cryolive may register one, counts: MX beamlines sharing ISPyB stay out)."""
    names = tuple(beamlines) or EM_BEAMLINES
    newest = (
        sa.select(Movie.dataCollectionId, sa.func.max(Movie.createdTimeStamp).label("last"))
        .group_by(Movie.dataCollectionId)
        .subquery()
    )
    rows = session.execute(
        sa.select(
            DataCollection.dataCollectionId,
            BLSession.sessionId,
            Proposal.proposalCode,
            Proposal.proposalNumber,
            BLSession.visit_number,
            DataCollection.imageDirectory,
            newest.c.last,
        )
        .join(
            DataCollectionGroup,
            DataCollectionGroup.dataCollectionGroupId == DataCollection.dataCollectionGroupId,
        )
        .join(BLSession, BLSession.sessionId == DataCollectionGroup.sessionId)
        .join(Proposal, Proposal.proposalId == BLSession.proposalId)
        .outerjoin(newest, newest.c.dataCollectionId == DataCollection.dataCollectionId)
        .where(
            sa.or_(BLSession.startDate.is_(None), BLSession.startDate <= now),
            sa.or_(BLSession.endDate.is_(None), BLSession.endDate >= now),
            sa.or_(BLSession.beamLineName.is_(None), BLSession.beamLineName.in_(names)),
        )
        .order_by(DataCollection.dataCollectionId)
    )
    return [
        LiveCollection(int(dc), int(sid), f"{code}{number}-{n}", str(folder or ""), last)
        for dc, sid, code, number, n, folder, last in rows
    ]


def latest_values(
    session: Session, *, data_collection_id: int, last: int = 25
) -> dict[str, list[float]]:
    """Each measure's ``last`` values, newest first (defocus in µm, motion, astigmatism and
    resolution in Å), from the programs the collection's series shows."""
    progs = programs(session, data_collection_id=data_collection_id)

    def newest(column: Any, program: Any, chosen: int | None, order: Any) -> list[float]:
        if chosen is None:
            return []
        rows = session.scalars(
            sa.select(column)
            .where(program == chosen, column.is_not(None))
            .order_by(order.desc())
            .limit(last)
        )
        return [float(v) for v in rows]

    mc, ctf = MotionCorrection, CTF
    defocus = newest(ctf.estimatedDefocus, ctf.autoProcProgramId, progs.ctf, ctf.motionCorrectionId)
    return {
        "total_motion_a": newest(mc.totalMotion, mc.autoProcProgramId, progs.motion, mc.movieId),
        "defocus_um": [d / 1e4 for d in defocus],
        "astigmatism_a": newest(
            ctf.astigmatism, ctf.autoProcProgramId, progs.ctf, ctf.motionCorrectionId
        ),
        "resolution_a": newest(
            ctf.estimatedResolution, ctf.autoProcProgramId, progs.ctf, ctf.motionCorrectionId
        ),
        "ice_median": newest(
            RelativeIceThickness.median,
            RelativeIceThickness.autoProcProgramId,
            progs.ice,
            RelativeIceThickness.motionCorrectionId,
        ),
        "particles": newest(
            ParticlePicker.numberOfParticles,
            ParticlePicker.programId,
            progs.picker,
            ParticlePicker.firstMotionCorrectionId,
        ),
    }


def _work_of(session: Session, data_collection_id: int) -> sa.ColumnElement[bool]:
    keys = [
        WorkItem.key.startswith(f"movie:{p}:") for p in _job_programs(session, data_collection_id)
    ]
    return sa.or_(*keys) if keys else sa.false()


def outcomes(session: Session, *, data_collection_id: int, last: int = 50) -> tuple[int, int]:
    """(failed, closed) among the collection's ``last`` work items closed most recently."""
    rows = session.scalars(
        sa.select(WorkItem.outcome)
        .where(_work_of(session, data_collection_id), WorkItem.done_at.is_not(None))
        .order_by(WorkItem.done_at.desc())
        .limit(last)
    ).all()
    return sum(1 for r in rows if r == "failed"), len(rows)


def oldest_open(session: Session, *, data_collection_id: int) -> dt.datetime | None:
    """When the collection's oldest open work was dispatched (held work of a paused
    collection does not count: it waits on purpose)."""
    held = sa.select(HeldWork.key).where(HeldWork.key == WorkItem.key).exists()
    found = session.scalar(
        sa.select(sa.func.min(WorkItem.dispatched_at)).where(
            _work_of(session, data_collection_id), WorkItem.done_at.is_(None), ~held
        )
    )
    return found


def open_alert(session: Session, *, key: str) -> Alert | None:
    return session.scalar(
        sa.select(Alert).where(Alert.key == key, Alert.cleared_at.is_(None)).limit(1)
    )


def open_keys(session: Session) -> set[str]:
    return set(session.scalars(sa.select(Alert.key).where(Alert.cleared_at.is_(None))))


def raise_alert(
    session: Session,
    *,
    key: str,
    rule: str,
    message: str,
    now: dt.datetime,
    session_id: int | None = None,
    data_collection_id: int | None = None,
) -> Alert | None:
    """Record a new occurrence of ``key``; None when one is open already (raised once until
    it clears)."""
    if open_alert(session, key=key) is not None:
        return None
    alert = Alert(
        key=key[:128],
        rule=rule,
        message=message[:1000],
        raised_at=now,
        session_id=session_id,
        data_collection_id=data_collection_id,
        delivery="",
    )
    session.add(alert)
    session.flush()
    return alert


def clear_alert(session: Session, *, key: str, now: dt.datetime) -> bool:
    """Close the open occurrence of ``key``; False when there was none."""
    alert = open_alert(session, key=key)
    if alert is None:
        return False
    alert.cleared_at = now
    session.flush()
    return True


def _rows(alerts: Sequence[Alert]) -> list[AlertRow]:
    return [
        AlertRow(
            a.alert_id,
            a.rule,
            a.key,
            a.session_id,
            a.data_collection_id,
            a.message,
            a.raised_at,
            a.cleared_at,
            a.delivery,
        )
        for a in alerts
    ]


def alerts_of_visit(session: Session, *, session_id: int, limit: int = 100) -> list[AlertRow]:
    """A visit's alerts, open and cleared, newest first."""
    found = session.scalars(
        sa.select(Alert)
        .where(Alert.session_id == session_id)
        .order_by(Alert.raised_at.desc(), Alert.alert_id.desc())
        .limit(limit)
    ).all()
    return _rows(found)


def recent_alerts(session: Session, *, limit: int = 100) -> list[AlertRow]:
    """Every alert (the facility's, and every visit's), open ones first, then newest first."""
    found = session.scalars(
        sa.select(Alert)
        .order_by(Alert.cleared_at.is_not(None), Alert.raised_at.desc(), Alert.alert_id.desc())
        .limit(limit)
    ).all()
    return _rows(found)


def set_opt_in(session: Session, *, session_id: int, enabled: bool, login: str) -> None:
    """Turn e-mail alerts for a visit's members on or off."""
    row = session.get(VisitAlerts, session_id)
    if row is None:
        session.add(VisitAlerts(session_id=session_id, enabled=enabled, changed_by=login))
    else:
        row.enabled, row.changed_by = enabled, login
    session.flush()


def opted_in(session: Session, *, session_id: int) -> bool:
    row = session.get(VisitAlerts, session_id)
    return bool(row is not None and row.enabled)


def recipients(session: Session, *, session_id: int) -> list[str]:
    """The e-mail addresses of a visit's members, sorted, once each."""
    rows = session.scalars(
        sa.select(Person.emailAddress)
        .join(SessionHasPerson, SessionHasPerson.personId == Person.personId)
        .where(SessionHasPerson.sessionId == session_id, Person.emailAddress.is_not(None))
    )
    return sorted({str(r) for r in rows if r and "@" in str(r)})
