"""Read-only views for the staff area: recorded failures and throughput per data collection.

Failures are the ERROR AutoProcProgramMessage rows of a collection's programs: a step that
failed on one movie (``FailureRecord``, written by the pipeline's writer) or a program that
failed as a whole. Throughput counts motion-corrected movies per hour of their
``Movie.createdTimeStamp`` (acquisition time when the metadata gave one, else registration).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from ispyb.sqlalchemy import (
    AutoProcProgram,
    AutoProcProgramMessage,
    BLSession,
    DataCollection,
    MotionCorrection,
    Movie,
    ProcessingJob,
    Proposal,
)
from sqlalchemy.orm import Session

from cryolive.db.repo.browse import _visit_name, collection_name, em_sessions


@dataclass(frozen=True)
class FailureMessage:
    auto_proc_program_id: int
    recorded: dt.datetime | None
    message: str
    description: str


@dataclass(frozen=True)
class CollectionFailures:
    """The recorded failures of one data collection: how many, and the newest few."""

    data_collection_id: int
    visit: str
    directory: str
    count: int
    newest: dt.datetime | None
    latest: list[FailureMessage] = field(default_factory=list)


@dataclass(frozen=True)
class Throughput:
    """Motion-corrected movies per hour for one data collection; ``hours`` are the starts of
    the hour bins (oldest first), ``movies`` the count in each."""

    data_collection_id: int
    visit: str
    microscope: str
    directory: str
    hours: list[dt.datetime]
    movies: list[int]

    @property
    def name(self) -> str:
        """The collection as a person calls it: ``raw``, ``raw2`` (not its absolute path)."""
        return collection_name(self.directory, self.visit)


def _collection_names(session: Session, ids: set[int]) -> dict[int, tuple[str, str, str]]:
    """(visit, microscope, directory) of each data collection in ``ids``."""
    if not ids:
        return {}
    rows = session.execute(
        sa.select(
            DataCollection.dataCollectionId,
            Proposal.proposalCode,
            Proposal.proposalNumber,
            BLSession.visit_number,
            BLSession.beamLineName,
            DataCollection.imageDirectory,
        )
        .join(BLSession, BLSession.sessionId == DataCollection.SESSIONID)
        .join(Proposal, Proposal.proposalId == BLSession.proposalId)
        .where(DataCollection.dataCollectionId.in_(ids))
    )
    return {
        int(r[0]): (_visit_name(r[1], r[2], r[3]), str(r[4] or ""), str(r[5] or "")) for r in rows
    }


def recent_failures(
    session: Session,
    *,
    collections: int = 20,
    per_collection: int = 5,
    beamlines: Sequence[str] = (),
) -> list[CollectionFailures]:
    """The data collections with recorded failures, latest failure first, each with its
    number of failures and its ``per_collection`` newest messages (microscopes:
    ``beamlines``, default ISPyB's EM names: see :func:`~cryolive.db.repo.browse.em_sessions`)."""
    if collections < 1 or per_collection < 1:
        raise ValueError("collections, per_collection: must be >= 1")
    dc = ProcessingJob.dataCollectionId
    errors = (
        sa.select(AutoProcProgramMessage)
        .join(
            AutoProcProgram,
            AutoProcProgram.autoProcProgramId == AutoProcProgramMessage.autoProcProgramId,
        )
        .join(ProcessingJob, ProcessingJob.processingJobId == AutoProcProgram.processingJobId)
        .join(DataCollection, DataCollection.dataCollectionId == ProcessingJob.dataCollectionId)
        .where(
            AutoProcProgramMessage.severity == "ERROR",
            DataCollection.SESSIONID.in_(em_sessions(beamlines)),
        )
    )
    newest_id = sa.func.max(AutoProcProgramMessage.autoProcProgramMessageId)
    top = session.execute(
        errors.with_only_columns(
            dc, sa.func.count(), sa.func.max(AutoProcProgramMessage.recordTimeStamp), newest_id
        )
        .group_by(dc)
        .order_by(newest_id.desc())
        .limit(collections)
    ).all()
    names = _collection_names(session, {int(r[0]) for r in top})
    out = []
    for dc_id, count, newest, _ in top:
        latest = session.execute(
            errors.with_only_columns(
                AutoProcProgramMessage.autoProcProgramId,
                AutoProcProgramMessage.recordTimeStamp,
                AutoProcProgramMessage.message,
                AutoProcProgramMessage.description,
            )
            .where(dc == dc_id)
            .order_by(AutoProcProgramMessage.autoProcProgramMessageId.desc())
            .limit(per_collection)
        )
        visit, _, directory = names[int(dc_id)]
        out.append(
            CollectionFailures(
                data_collection_id=int(dc_id),
                visit=visit,
                directory=directory,
                count=int(count),
                newest=newest,
                latest=[
                    FailureMessage(int(p), t, str(m or ""), str(d or "")) for p, t, m, d in latest
                ],
            )
        )
    return out


def throughput(
    session: Session, *, until: dt.datetime, hours: int = 24, beamlines: Sequence[str] = ()
) -> list[Throughput]:
    """Motion-corrected movies per hour in the ``hours`` hours before ``until`` (naive UTC),
    per data collection that has any (on the microscopes ``beamlines``, as in
    :func:`recent_failures`); the bins end at ``until`` rounded up to the hour."""
    if not 1 <= hours <= 24 * 31:
        raise ValueError(f"hours: must be between 1 and 744, got {hours}")
    end = until.replace(minute=0, second=0, microsecond=0)
    if end < until:
        end += dt.timedelta(hours=1)
    start = end - dt.timedelta(hours=hours)
    corrected = sa.exists().where(MotionCorrection.movieId == Movie.movieId)
    rows = session.execute(
        sa.select(Movie.dataCollectionId, Movie.createdTimeStamp)
        .join(DataCollection, DataCollection.dataCollectionId == Movie.dataCollectionId)
        .where(
            Movie.createdTimeStamp >= start,
            Movie.createdTimeStamp < end,
            corrected,
            DataCollection.SESSIONID.in_(em_sessions(beamlines)),
        )
    )
    bins: dict[int, list[int]] = {}
    for dc_id, created in rows:
        index = int((created - start) // dt.timedelta(hours=1))
        bins.setdefault(int(dc_id), [0] * hours)[index] += 1
    names = _collection_names(session, set(bins))
    starts = [start + dt.timedelta(hours=i) for i in range(hours)]
    return [
        Throughput(dc_id, *names[dc_id], hours=starts, movies=counts)
        for dc_id, counts in sorted(bins.items())
    ]


RATE_WINDOW = dt.timedelta(minutes=15)  # "now": the rate over the last 15 minutes


@dataclass(frozen=True)
class MicroscopeRate:
    """A microscope's movies now: recorded in the last 15 minutes, as movies per hour, and the
    time of its newest movie (by ``Movie.createdTimeStamp``)."""

    microscope: str
    recent: int
    movies_per_hour: float
    last_movie: dt.datetime | None


def microscope_rates(
    session: Session, *, now: dt.datetime, beamlines: Sequence[str] = ()
) -> list[MicroscopeRate]:
    """Per microscope with any movie, the rate over the last 15 minutes before ``now`` (naive
    UTC) and its newest movie, by microscope name."""
    recent = sa.func.sum(
        sa.case(
            (
                sa.and_(Movie.createdTimeStamp >= now - RATE_WINDOW, Movie.createdTimeStamp <= now),
                1,
            ),
            else_=0,
        )
    )
    rows = session.execute(
        sa.select(BLSession.beamLineName, recent, sa.func.max(Movie.createdTimeStamp))
        .join(DataCollection, BLSession.sessionId == DataCollection.SESSIONID)
        .join(Movie, Movie.dataCollectionId == DataCollection.dataCollectionId)
        .where(BLSession.sessionId.in_(em_sessions(beamlines)))
        .group_by(BLSession.beamLineName)
        .order_by(BLSession.beamLineName)
    ).all()
    per_hour = dt.timedelta(hours=1) / RATE_WINDOW
    return [
        MicroscopeRate(
            microscope=str(name or ""),
            recent=int(n or 0),
            movies_per_hour=int(n or 0) * per_hour,
            last_movie=last,
        )
        for name, n, last in rows
    ]
