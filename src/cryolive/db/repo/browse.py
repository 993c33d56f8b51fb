"""Read-only views of visits, data collections and processing jobs, for the web application.

Functions return frozen dataclasses (or None where the thing does not exist); they check no
permission themselves: the caller asks :func:`cryolive.db.repo.visits.can_see_visit` with the
``session_id`` each result carries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import sqlalchemy as sa
from ispyb.sqlalchemy import (
    AutoProcProgram,
    AutoProcProgramMessage,
    BLSession,
    DataCollection,
    Movie,
    ParticleClassification,
    ParticleClassificationGroup,
    ParticlePicker,
    ProcessingJob,
    ProcessingJobParameter,
    Proposal,
)
from sqlalchemy.orm import Session

from cryolive.db import ledger
from cryolive.db.models import ClassChoice, ClassificationTime
from cryolive.db.repo import classes as class_repo
from cryolive.db.repo._keys import lookup, table_of
from cryolive.db.repo.collections import job_parameters

# The words a run's status is shown in, everywhere (web, API, command line): one set, checked.
#   requested: recorded, not started; running: started, with work queued or in flight for it, or
#   (an automatic run) a movie came within IDLE_AFTER; idle: an automatic run with nothing queued
#   or in flight and no movie for IDLE_AFTER (it wakes when the next movie comes); finished: an
#   automatic run of a visit that has ended, with nothing left in flight; success / failed: ended
#   as the pipeline recorded; stopped: a person stopped it (ISPyB records that as failed).
RunStatus = Literal["requested", "running", "idle", "finished", "success", "stopped", "failed"]
RUN_STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)
ENDED: frozenset[RunStatus] = frozenset({"finished", "success", "stopped", "failed"})
IDLE_AFTER = dt.timedelta(minutes=10)
STOPPED_BY = "stopped by "  # how the message of a run a person stopped begins


@dataclass(frozen=True)
class VisitRow:
    session_id: int
    name: str
    microscope: str
    start: dt.datetime | None
    end: dt.datetime | None
    collections: int = 0
    movies: int = 0
    last_movie: dt.datetime | None = None

    def state_at(self, now: dt.datetime) -> Literal["not started", "under way", "ended"]:
        """Where the visit stands by its dates (``now`` naive UTC; an open end is not ended)."""
        if self.start is not None and self.start > now:
            return "not started"
        return "ended" if self.end is not None and self.end < now else "under way"


def collection_name(directory: str, visit: str) -> str:
    """What a person calls a data collection: its raw folder relative to the visit's folder
    (``raw``, ``raw2/GridSquare_3``), found after the path's component named as the visit;
    the last two components where the visit's name is not in the path."""
    parts = [p for p in directory.replace("\\", "/").split("/") if p]
    if visit in parts:
        rest = parts[len(parts) - parts[::-1].index(visit) :]
        if rest:
            return "/".join(rest)
    return "/".join(parts[-2:]) or directory


@dataclass(frozen=True)
class CollectionRow:
    data_collection_id: int
    session_id: int
    visit: str
    directory: str
    file_template: str
    start: dt.datetime | None
    voltage_kv: float | None
    pixel_size_a: float | None
    dose_e_per_a2: float | None
    movies: int = 0
    name: str = ""  # collection_name: the raw folder relative to the visit's folder


@dataclass(frozen=True)
class JobRow:
    """One recipe run: a ProcessingJob and its AutoProcProgram."""

    auto_proc_program_id: int
    processing_job_id: int
    data_collection_id: int
    session_id: int
    recipe: str
    display_name: str
    automatic: bool
    status: RunStatus
    message: str
    start: dt.datetime | None
    end: dt.datetime | None
    parameters: dict[str, str] = field(default_factory=dict)
    messages: list[tuple[str, str]] = field(default_factory=list)  # (severity, message)


def _visit_name(code: str | None, number: str | None, visit_number: int | None) -> str:
    return f"{code or ''}{number or ''}-{visit_number}"


_VISIT_COLUMNS = (
    BLSession.sessionId,
    Proposal.proposalCode,
    Proposal.proposalNumber,
    BLSession.visit_number,
    BLSession.beamLineName,
    BLSession.startDate,
    BLSession.endDate,
)


def _visit_row(
    row: Any, collections: int = 0, movies: int = 0, last_movie: dt.datetime | None = None
) -> VisitRow:
    sid, code, number, visit_number, microscope, start, end = tuple(row)[:7]
    return VisitRow(
        session_id=int(sid),
        name=_visit_name(code, number, visit_number),
        microscope=str(microscope or ""),
        start=start,
        end=end,
        collections=collections,
        movies=movies,
        last_movie=last_movie,
    )


def visits_among(session: Session, *, session_ids: sa.Select[tuple[int]]) -> list[VisitRow]:
    """The visits whose ids ``session_ids`` selects, newest first, with their collection and
    movie counts and the time of their newest movie."""
    counts = (
        sa.select(DataCollection.SESSIONID, sa.func.count().label("n"))
        .group_by(DataCollection.SESSIONID)
        .subquery()
    )
    movies = (
        sa.select(
            DataCollection.SESSIONID,
            sa.func.count().label("n"),
            sa.func.max(Movie.createdTimeStamp).label("last"),
        )
        .join(Movie, Movie.dataCollectionId == DataCollection.dataCollectionId)
        .group_by(DataCollection.SESSIONID)
        .subquery()
    )
    rows = session.execute(
        sa.select(
            *_VISIT_COLUMNS,
            sa.func.coalesce(counts.c.n, 0),
            sa.func.coalesce(movies.c.n, 0),
            movies.c.last,
        )
        .join(Proposal, Proposal.proposalId == BLSession.proposalId)
        .outerjoin(counts, BLSession.sessionId == counts.c.SESSIONID)
        .outerjoin(movies, BLSession.sessionId == movies.c.SESSIONID)
        .where(BLSession.sessionId.in_(session_ids))
        .order_by(BLSession.startDate.desc(), BLSession.sessionId.desc())
    )
    return [_visit_row(row, int(row[7]), int(row[8]), row[9]) for row in rows]


def visit(session: Session, *, session_id: int) -> VisitRow | None:
    row = session.execute(
        sa.select(*_VISIT_COLUMNS)
        .join(Proposal, Proposal.proposalId == BLSession.proposalId)
        .where(BLSession.sessionId == session_id)
    ).first()
    return None if row is None else _visit_row(row)


def collections_of(session: Session, *, session_id: int) -> list[CollectionRow]:
    """A visit's data collections (one per raw folder), with their movie counts."""
    counts = (
        sa.select(Movie.dataCollectionId, sa.func.count().label("n"))
        .join(DataCollection, DataCollection.dataCollectionId == Movie.dataCollectionId)
        .where(session_id == DataCollection.SESSIONID)
        .group_by(Movie.dataCollectionId)
        .subquery()
    )
    rows = session.execute(
        sa.select(DataCollection, sa.func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.dataCollectionId == DataCollection.dataCollectionId)
        .where(session_id == DataCollection.SESSIONID)
        .order_by(DataCollection.dataCollectionId)
    ).all()
    name = visit(session, session_id=session_id)
    return [_collection_row(dc, name.name if name else "", int(n)) for dc, n in rows]


def collection(session: Session, *, data_collection_id: int) -> CollectionRow | None:
    dc = session.get(DataCollection, data_collection_id)
    if dc is None or dc.SESSIONID is None:
        return None
    name = visit(session, session_id=int(dc.SESSIONID))
    movies = session.scalar(
        sa.select(sa.func.count())
        .select_from(Movie)
        .where(Movie.dataCollectionId == data_collection_id)
    )
    return _collection_row(dc, name.name if name else "", int(movies or 0))


def _collection_row(dc: DataCollection, visit_name: str, movies: int) -> CollectionRow:
    return CollectionRow(
        data_collection_id=int(dc.dataCollectionId),
        session_id=int(dc.SESSIONID),
        visit=visit_name,
        directory=str(dc.imageDirectory or ""),
        file_template=str(dc.fileTemplate or ""),
        start=dc.startTime,
        voltage_kv=_float(dc.voltage),
        pixel_size_a=_float(dc.pixelSizeOnImage),
        dose_e_per_a2=_float(dc.totalExposedDose),
        movies=movies,
        name=collection_name(str(dc.imageDirectory or ""), visit_name),
    )


def _float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Activity:
    """What tells a started, not ended run's state: work still open for it in the ledger, the
    newest movie of its collection, the end of its visit, and the time now (naive UTC)."""

    open_work: int
    last_movie: dt.datetime | None
    visit_end: dt.datetime | None
    now: dt.datetime


def run_status(
    status: int | None,
    start: dt.datetime | None,
    message: str,
    *,
    automatic: bool,
    activity: Activity | None = None,
) -> RunStatus:
    """A run's status in words (see :data:`RunStatus`), from its program's processingStatus
    and start and, for a started automatic run, what it is doing."""
    if status is not None:
        if int(status) == 1:
            return "success"
        return "stopped" if message.startswith(STOPPED_BY) else "failed"
    if start is None:
        return "requested"
    if not automatic or activity is None or activity.open_work:
        return "running"
    if activity.visit_end is not None and activity.visit_end <= activity.now:
        return "finished"
    recent = activity.last_movie is not None and activity.now - activity.last_movie < IDLE_AFTER
    return "running" if recent else "idle"


def ended_phrase(status: RunStatus) -> str:
    """How a run that has ended is said in a sentence ("has already …")."""
    return {"success": "finished", "stopped": "been stopped"}.get(status, status)


_JOB_QUERY = (
    sa.select(
        AutoProcProgram.autoProcProgramId,
        ProcessingJob.processingJobId,
        ProcessingJob.dataCollectionId,
        DataCollection.SESSIONID,
        ProcessingJob.recipe,
        ProcessingJob.displayName,
        ProcessingJob.automatic,
        AutoProcProgram.processingStatus,
        AutoProcProgram.processingMessage,
        AutoProcProgram.processingStartTime,
        AutoProcProgram.processingEndTime,
        BLSession.endDate,
    )
    .join(ProcessingJob, ProcessingJob.processingJobId == AutoProcProgram.processingJobId)
    .join(DataCollection, DataCollection.dataCollectionId == ProcessingJob.dataCollectionId)
    .join(BLSession, BLSession.sessionId == DataCollection.SESSIONID)
)


def _activities(session: Session, rows: list[Any], now: dt.datetime) -> dict[int, Activity]:
    """The activity of each started, not ended automatic run among ``rows``, by program id."""
    live = [r for r in rows if r[7] is None and r[9] is not None and r[6]]
    if not live:
        return {}
    last: dict[int, dt.datetime | None] = {
        int(dc): latest
        for dc, latest in session.execute(
            sa.select(Movie.dataCollectionId, sa.func.max(Movie.createdTimeStamp))
            .where(Movie.dataCollectionId.in_({int(r[2]) for r in live}))
            .group_by(Movie.dataCollectionId)
        )
    }
    return {
        int(r[0]): Activity(
            open_work=ledger.open_items(session, program_id=int(r[0])),
            last_movie=last.get(int(r[2])),
            visit_end=r[11],
            now=now,
        )
        for r in live
    }


def _jobs(session: Session, query: Any, *, now: dt.datetime | None = None) -> list[JobRow]:
    rows: list[Any] = list(session.execute(query))
    ids = [int(r[0]) for r in rows]
    activity = _activities(session, rows, now or dt.datetime.now(dt.UTC).replace(tzinfo=None))
    messages: dict[int, list[tuple[str, str]]] = {i: [] for i in ids}
    if ids:
        for program, severity, text in session.execute(
            sa.select(
                AutoProcProgramMessage.autoProcProgramId,
                AutoProcProgramMessage.severity,
                AutoProcProgramMessage.message,
            )
            .where(AutoProcProgramMessage.autoProcProgramId.in_(ids))
            .order_by(AutoProcProgramMessage.autoProcProgramMessageId)
        ):
            messages[int(program)].append((str(severity), str(text or "")))
    return [
        JobRow(
            auto_proc_program_id=int(r[0]),
            processing_job_id=int(r[1]),
            data_collection_id=int(r[2]),
            session_id=int(r[3]),
            recipe=str(r[4] or ""),
            display_name=str(r[5] or ""),
            automatic=bool(r[6]),
            status=run_status(
                r[7], r[9], str(r[8] or ""), automatic=bool(r[6]), activity=activity.get(int(r[0]))
            ),
            message=str(r[8] or ""),
            start=r[9],
            end=r[10],
            parameters=job_parameters(session, processing_job_id=int(r[1])),
            messages=messages[int(r[0])],
        )
        for r in rows
    ]


def jobs_of(
    session: Session, *, data_collection_id: int, now: dt.datetime | None = None
) -> list[JobRow]:
    """A data collection's recipe runs, newest first; ``now`` (naive UTC) decides idle runs."""
    return _jobs(
        session,
        _JOB_QUERY.where(ProcessingJob.dataCollectionId == data_collection_id).order_by(
            AutoProcProgram.autoProcProgramId.desc()
        ),
        now=now,
    )


def job(session: Session, *, auto_proc_program_id: int) -> JobRow | None:
    found = _jobs(
        session, _JOB_QUERY.where(AutoProcProgram.autoProcProgramId == auto_proc_program_id)
    )
    return found[0] if found else None


# ISPyB's names of electron microscopes (Diamond's eBIC: m01…, e01…); MX beamlines (i03, i04-1…)
# share the BLSession table and stay out of the staff area.
EM_BEAMLINES = tuple(f"{kind}{number:02d}" for kind in "me" for number in range(1, 100))


def em_sessions(beamlines: Sequence[str] = ()) -> sa.Select[tuple[int]]:
    """The visits on the microscopes ``beamlines`` (default: :data:`EM_BEAMLINES`)."""
    names = tuple(beamlines) or EM_BEAMLINES
    return sa.select(BLSession.sessionId).where(BLSession.beamLineName.in_(names))


def failures(
    session: Session, *, limit: int = 100, beamlines: Sequence[str] = ()
) -> list[tuple[str, JobRow]]:
    """The latest failed programs (status 0, not stopped by a person) of the microscopes'
    visits, as (visit name, job)."""
    query = _JOB_QUERY.where(
        AutoProcProgram.processingStatus == 0,
        sa.func.coalesce(AutoProcProgram.processingMessage, "").not_like(f"{STOPPED_BY}%"),
        DataCollection.SESSIONID.in_(em_sessions(beamlines)),
    )
    jobs = _jobs(session, query.order_by(AutoProcProgram.autoProcProgramId.desc()).limit(limit))
    names = {
        v.session_id: v.name
        for v in visits_among(
            session,
            session_ids=sa.select(BLSession.sessionId).where(
                BLSession.sessionId.in_({j.session_id for j in jobs})
            ),
        )
    }
    return [(names.get(j.session_id, "?"), j) for j in jobs]


# How a visit stands in the staff area: live (under way, a movie within IDLE_AFTER and every
# queue of the pipeline has a consumer), stalled (under way, movies come, but a queue has no
# consumer or the broker is not known), quiet (under way by its dates, no movie lately), or ""
# (not under way).
VisitState = Literal["live", "stalled", "quiet", ""]


@dataclass(frozen=True)
class ScopeVisit:
    visit: VisitRow
    state: VisitState
    last_movie: dt.datetime | None


def microscopes(
    session: Session,
    *,
    now: dt.datetime,
    consuming: bool | None = None,
    beamlines: Sequence[str] = (),
) -> dict[str, list[ScopeVisit]]:
    """Each microscope's visits, newest first, each with its :data:`VisitState` and newest
    movie (microscopes: ``beamlines``, default :data:`EM_BEAMLINES`). ``consuming``: whether
    every queue of the pipeline has a consumer (None: unknown).

    A visit is under way when it has started and not ended (an open end counts as not ended).
    """
    out: dict[str, list[ScopeVisit]] = {}
    for row in visits_among(session, session_ids=em_sessions(beamlines)):
        state: VisitState = ""
        if (row.start is None or row.start <= now) and (row.end is None or row.end >= now):
            movie = row.last_movie
            if movie is None or now - movie >= IDLE_AFTER:
                state = "quiet"
            else:
                state = "live" if consuming else "stalled"
        out.setdefault(row.microscope or "(no microscope)", []).append(
            ScopeVisit(visit=row, state=state, last_movie=row.last_movie)
        )
    return dict(sorted(out.items()))


def raw_folders(session: Session, *, session_id: int) -> list[str]:
    """The raw folders (``imageDirectory``) of a visit's data collections, as recorded."""
    rows = session.scalars(
        sa.select(DataCollection.imageDirectory)
        .where(session_id == DataCollection.SESSIONID, DataCollection.imageDirectory.is_not(None))
        .distinct()
    )
    return [str(r) for r in rows if r]


def request_exists(
    session: Session, *, data_collection_id: int, recipe: str, request_key: str
) -> bool:
    """Whether the processing job of this request key is recorded already."""
    key = (data_collection_id, recipe, request_key)
    return bool(lookup(session, table=table_of(ProcessingJob), keys=[key]))


def open_requests(session: Session, *, data_collection_id: int) -> int:
    """Users' requests (not automatic) on a data collection that are requested or running."""
    return int(
        session.scalar(
            sa.select(sa.func.count())
            .select_from(ProcessingJob)
            .join(AutoProcProgram, AutoProcProgram.processingJobId == ProcessingJob.processingJobId)
            .where(
                ProcessingJob.dataCollectionId == data_collection_id,
                ProcessingJob.automatic == 0,
                AutoProcProgram.processingStatus.is_(None),
            )
        )
        or 0
    )


def requests_by(session: Session, *, login: str, within: dt.timedelta) -> int:
    """Users' requests recorded with ``requested_by`` = ``login`` in the last ``within``, by
    the database's clock (the one that stamped them)."""
    now = session.scalar(sa.select(sa.func.current_timestamp(type_=sa.DateTime)))
    if not isinstance(now, dt.datetime):
        raise TypeError(f"the database's clock answered {now!r}")
    return int(
        session.scalar(
            sa.select(sa.func.count())
            .select_from(ProcessingJob)
            .join(
                ProcessingJobParameter,
                ProcessingJobParameter.processingJobId == ProcessingJob.processingJobId,
            )
            .where(
                ProcessingJob.automatic == 0,
                ProcessingJob.recordTimestamp >= now.replace(tzinfo=None) - within,
                ProcessingJobParameter.parameterKey == "requested_by",
                ProcessingJobParameter.parameterValue == login,
            )
        )
        or 0
    )


@dataclass(frozen=True)
class Classification:
    """One 2D classification of a batch, as the history lists it."""

    group_id: int
    batch_number: int
    attempt: int  # 1 for the batch's first classification, 2 for its next …
    particles: int
    classes: int
    selected: int  # classes selected: a person's choice, else the engine's
    selected_particles: int  # particles in them
    newest: bool  # the one the gallery shows
    started_at: dt.datetime | None = None  # when it ran (naive UTC); None: not recorded
    duration_s: float | None = None  # how long the 2D engine ran


def classification_history(session: Session, *, data_collection_id: int) -> list[Classification]:
    """Every 2D classification of the collection's batches, oldest first: a batch classified
    again (more particles) appears once per classification."""
    chosen = class_repo.effective_selected()
    selected = (
        sa.select(
            ParticleClassification.particleClassificationGroupId,
            sa.func.sum(chosen).label("n"),
            sa.func.sum(
                sa.case((chosen == 1, ParticleClassification.particlesPerClass), else_=0)
            ).label("p"),
        )
        .outerjoin(
            ClassChoice,
            ClassChoice.particle_classification_id
            == ParticleClassification.particleClassificationId,
        )
        .group_by(ParticleClassification.particleClassificationGroupId)
        .subquery()
    )
    rows = session.execute(
        sa.select(
            ParticleClassificationGroup.particleClassificationGroupId,
            ParticleClassificationGroup.batchNumber,
            ParticleClassificationGroup.numberOfParticlesPerBatch,
            ParticleClassificationGroup.numberOfClassesPerBatch,
            sa.func.coalesce(selected.c.n, 0),
            sa.func.coalesce(selected.c.p, 0),
            ClassificationTime.started_at,
            ClassificationTime.duration_s,
        )
        .join(
            ParticlePicker,
            ParticlePicker.particlePickerId == ParticleClassificationGroup.particlePickerId,
        )
        .join(AutoProcProgram, AutoProcProgram.autoProcProgramId == ParticlePicker.programId)
        .join(ProcessingJob, ProcessingJob.processingJobId == AutoProcProgram.processingJobId)
        .outerjoin(
            selected,
            selected.c.particleClassificationGroupId
            == ParticleClassificationGroup.particleClassificationGroupId,
        )
        .outerjoin(
            ClassificationTime,
            ClassificationTime.particle_classification_group_id
            == ParticleClassificationGroup.particleClassificationGroupId,
        )
        .where(
            ProcessingJob.dataCollectionId == data_collection_id,
            ParticleClassificationGroup.type == "2D",
        )
        .order_by(ParticleClassificationGroup.particleClassificationGroupId)
    ).all()
    per_batch: dict[int, int] = {}  # classifications of each batch so far
    attempts: dict[int, int] = {}  # of each group
    last: dict[int, int] = {}  # each batch's newest group
    for row in rows:
        batch = int(row[1] or 0)
        per_batch[batch] = attempts[int(row[0])] = per_batch.get(batch, 0) + 1
        last[batch] = int(row[0])
    return [
        Classification(
            group_id=int(g),
            batch_number=int(b or 0),
            attempt=attempts[int(g)],
            particles=int(p or 0),
            classes=int(c or 0),
            selected=int(n or 0),
            selected_particles=int(sp or 0),
            newest=last[int(b or 0)] == int(g),
            started_at=started,
            duration_s=None if took is None else float(took),
        )
        for g, b, p, c, n, sp, started, took in rows
    ]
