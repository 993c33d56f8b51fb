"""Per-movie results of a data collection, as columns (for plots) and one movie at a time.

A movie may have been motion corrected by several programs (automatic processing, then a
reprocess); the series shows one: of the collection's programs, the one with the most motion
corrections (or the one asked for), and for CTF, ice and picking the one with the most results
among those computed from that program's motion corrections: one run on every chart and table.
Units: defocus, astigmatism, resolution and motion in Å (positive defocus is underfocus).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
from ispyb.sqlalchemy import (
    CTF,
    AutoProcProgram,
    DataCollection,
    MotionCorrection,
    Movie,
    ParticlePicker,
    ProcessingJob,
    RelativeIceThickness,
)
from sqlalchemy.orm import Session

from cryolive.db.models import WorkItem
from cryolive.db.repo import _series_rows
from cryolive.db.repo._downsample import extremes_kept, take
from cryolive.db.repo._sql import EpochSeconds, raw_rows
from cryolive.db.repo.classes import gallery, selected_particle_count

FILE_KINDS = {
    "snapshot": MotionCorrection.micrographSnapshotFullPath,
    "fft": MotionCorrection.fftFullPath,
    "drift": MotionCorrection.driftPlotFullPath,
    "ctf_fit": CTF.fftTheoreticalFullPath,
    "picks": ParticlePicker.summaryImageFullPath,
}
SERIES_COLUMNS = (
    "movie_id",
    "movie_number",
    "name",
    "created",
    "total_motion_a",
    "defocus_a",
    "astigmatism_a",
    "resolution_a",
    "ice_median",
    "particles",
)


_NO_END = 2**63 - 1  # above every id
MEASURES = (
    "total_motion_a",
    "defocus_a",
    "astigmatism_a",
    "resolution_a",
    "ice_median",
    "particles",
)  # the columns a chart plots, whose extremes a thinned series keeps


@dataclass(frozen=True)
class Programs:
    """The programs whose results a collection's series shows (None: no results yet)."""

    motion: int | None
    ctf: int | None
    ice: int | None
    picker: int | None


def _job_programs(session: Session, data_collection_id: int) -> list[int]:
    return [
        int(p)
        for p in session.scalars(
            sa.select(AutoProcProgram.autoProcProgramId)
            .join(ProcessingJob, ProcessingJob.processingJobId == AutoProcProgram.processingJobId)
            .where(ProcessingJob.dataCollectionId == data_collection_id)
        )
    ]


def _most_results(session: Session, column: Any, candidates: list[int]) -> tuple[int | None, int]:
    """The candidate program with the most rows in ``column``'s table, and its count (each
    count uses the program's index: a program belongs to one data collection, so no join is
    needed)."""
    best, most = None, 0
    for program in candidates:
        n = session.scalar(sa.select(sa.func.count()).where(column == program)) or 0
        if n > most:
            best, most = program, int(n)
    return best, most


def _on_motion(
    session: Session, program: Any, parent: Any, candidates: list[int], motion: int
) -> list[int]:
    """The candidates with results computed from the motion corrections of program ``motion``
    (``program``, ``parent``: the table's program and motion-correction columns; one row is
    enough, found through the program's index and the parent's key)."""
    return [
        candidate
        for candidate in candidates
        if session.scalar(
            sa.select(sa.literal(1))
            .select_from(program.class_)
            .join(MotionCorrection, MotionCorrection.motionCorrectionId == parent)
            .where(program == candidate, MotionCorrection.autoProcProgramId == motion)
            .limit(1)
        )
    ]


def _chosen(
    session: Session, data_collection_id: int, motion: int | None
) -> tuple[Programs, tuple[int, int, int, int]]:
    """:func:`programs`, and how many rows each chosen program has in ISPyB (motion
    corrections, CTF fits, ice measurements, micrographs picked)."""
    candidates = _job_programs(session, data_collection_id)
    if motion is None:
        motion, n_motion = _most_results(session, MotionCorrection.autoProcProgramId, candidates)
    else:
        n_motion = int(
            session.scalar(
                sa.select(sa.func.count()).where(MotionCorrection.autoProcProgramId == motion)
            )
            or 0
        )
    if motion is None:
        return Programs(None, None, None, None), (0, 0, 0, 0)

    def chosen(program: Any, parent: Any) -> tuple[int | None, int]:
        return _most_results(
            session, program, _on_motion(session, program, parent, candidates, motion)
        )

    ctf = chosen(CTF.autoProcProgramId, CTF.motionCorrectionId)
    ice = chosen(RelativeIceThickness.autoProcProgramId, RelativeIceThickness.motionCorrectionId)
    picker = chosen(ParticlePicker.programId, ParticlePicker.firstMotionCorrectionId)
    return (
        Programs(motion=motion, ctf=ctf[0], ice=ice[0], picker=picker[0]),
        (n_motion, ctf[1], ice[1], picker[1]),
    )


def programs(session: Session, *, data_collection_id: int, motion: int | None = None) -> Programs:
    """One run shown per collection: the motion-correction program with the most results (or
    the one asked for), and for CTF, ice and picks the programs that worked on *its* motion
    corrections, so no chart mixes a reprocess's values with the automatic run's."""
    return _chosen(session, data_collection_id, motion)[0]


def _joined(progs: Programs) -> Any:
    """Movie, with the chosen programs' results joined on (left joins: missing is NULL).

    Each join goes through its parent's index (movie, motion correction); ``program + 0``
    keeps SQLite from choosing the program's index instead, which would make the join
    quadratic in the number of movies.
    """

    def program(column: Any, chosen: int | None) -> Any:
        return column + 0 == (chosen or -1)

    motion = sa.and_(
        MotionCorrection.movieId == Movie.movieId,
        program(MotionCorrection.autoProcProgramId, progs.motion),
    )
    ctf = sa.and_(
        CTF.motionCorrectionId == MotionCorrection.motionCorrectionId,
        program(CTF.autoProcProgramId, progs.ctf),
    )
    ice = sa.and_(
        RelativeIceThickness.motionCorrectionId == MotionCorrection.motionCorrectionId,
        program(RelativeIceThickness.autoProcProgramId, progs.ice),
    )
    picker = sa.and_(
        ParticlePicker.firstMotionCorrectionId == MotionCorrection.motionCorrectionId,
        program(ParticlePicker.programId, progs.picker),
    )
    return (
        sa.select(Movie)
        .outerjoin(MotionCorrection, motion)
        .outerjoin(CTF, ctf)
        .outerjoin(RelativeIceThickness, ice)
        .outerjoin(ParticlePicker, picker)
    )


def series(
    session: Session,
    *,
    data_collection_id: int,
    after_movie_id: int = 0,
    until_movie_id: int | None = None,
    motion: int | None = None,
    summary: bool = True,
) -> dict[str, Any]:
    """Every movie after ``after_movie_id`` (up to ``until_movie_id`` included, when given) in
    acquisition order, as columns (``SERIES_COLUMNS``).

    ``created`` is in seconds since the epoch (UTC as recorded). Each table is read on its own
    (movie by collection, results by program, all through indexes) and joined here by
    dictionary: on 50,000 movies that is several times faster than one SQL join on SQLite.
    Only numbers are read (the creation time is converted by the database), and the columns
    are built by comprehensions, not row by row. The results' columns are ISPyB FLOATs, which
    both drivers return as ``float``.

    The whole series is read from the writer's summary (one table, see
    :mod:`cryolive.db.repo._series_rows`) when it holds exactly as many movies and results of
    the chosen programs as ISPyB does; otherwise (rows another ISPyB client wrote, several
    programs' fits of one micrograph) from ISPyB's tables as above. ``summary=False``: from
    ISPyB's tables in any case (the reference the summary is tested against).
    """
    whole = after_movie_id == 0 and until_movie_id is None
    progs, in_ispyb = _chosen(session, data_collection_id, motion)
    if whole and summary:
        found = _from_summary(session, data_collection_id, progs, in_ispyb)
        if found is not None:
            return found
    movies = raw_rows(
        session,
        sa.select(
            Movie.movieId,
            Movie.movieNumber,
            EpochSeconds(Movie.createdTimeStamp),
            Movie.movieFullPath,
        )
        .where(
            Movie.dataCollectionId == data_collection_id,
            Movie.movieId > after_movie_id,
            Movie.movieId <= (until_movie_id if until_movie_id is not None else _NO_END),
        )
        .order_by(Movie.movieId),
    )
    motion_rows = raw_rows(
        session,
        sa.select(
            MotionCorrection.movieId,
            MotionCorrection.motionCorrectionId,
            MotionCorrection.totalMotion,
        ).where(
            MotionCorrection.autoProcProgramId == (progs.motion or -1),
            MotionCorrection.movieId > after_movie_id,
            MotionCorrection.movieId <= (until_movie_id if until_movie_id is not None else _NO_END),
        ),
    )
    wanted = [row[1] for row in motion_rows]
    few = len(wanted) < 500  # a live update or a narrow zoom: ask for these fits only

    def results(*columns: Any, key: Any, program: Any, chosen: int | None) -> dict[Any, Any]:
        query = sa.select(key, *columns).where(program == (chosen or -1))
        if few:
            query = query.where(key.in_(wanted))
        elif not whole:  # a stretch of the collection: the fits of its motion corrections' ids
            query = query.where(key.between(min(wanted), max(wanted)))
        rows = raw_rows(session, query)
        return {row[0]: row[1:] for row in rows}

    ctf = results(
        CTF.estimatedDefocus,
        CTF.astigmatism,
        CTF.estimatedResolution,
        key=CTF.motionCorrectionId,
        program=CTF.autoProcProgramId,
        chosen=progs.ctf,
    )
    ice = results(
        RelativeIceThickness.median,
        key=RelativeIceThickness.motionCorrectionId,
        program=RelativeIceThickness.autoProcProgramId,
        chosen=progs.ice,
    )
    picks = results(
        ParticlePicker.numberOfParticles,
        key=ParticlePicker.firstMotionCorrectionId,
        program=ParticlePicker.programId,
        chosen=progs.picker,
    )
    movie_ids = [row[0] for row in movies]
    by_movie = {row[0]: row[1:] for row in motion_rows}
    none2, none3, none1 = (None, None), (None, None, None), (None,)
    mc_of = [by_movie.get(m, none2) for m in movie_ids]
    mc_ids = [row[0] for row in mc_of]
    fits = [ctf.get(m, none3) for m in mc_ids]
    return {
        "movie_id": movie_ids,
        "movie_number": [row[1] for row in movies],
        "name": [None if row[3] is None else str(row[3]).rsplit("/", 1)[-1] for row in movies],
        "created": [row[2] for row in movies],
        "total_motion_a": [row[1] for row in mc_of],
        "defocus_a": [row[0] for row in fits],
        "astigmatism_a": [row[1] for row in fits],
        "resolution_a": [row[2] for row in fits],
        "ice_median": [ice.get(m, none1)[0] for m in mc_ids],
        "particles": [picks.get(m, none1)[0] for m in mc_ids],
        "programs": progs.__dict__,
        "downsampled_from": None,  # every movie (see :func:`thinned`)
    }


def _from_summary(
    session: Session, data_collection_id: int, progs: Programs, in_ispyb: tuple[int, ...]
) -> dict[str, Any] | None:
    """The whole :func:`series` from the summary, or None when its counts differ from
    ISPyB's (``in_ispyb``: the chosen programs' row counts, from :func:`_chosen`)."""
    movies_in_ispyb = session.scalar(
        sa.select(sa.func.count()).where(Movie.dataCollectionId == data_collection_id)
    )
    picked = (progs.ctf, progs.ice, progs.picker)
    kept = _series_rows.counts(
        session, data_collection_id=data_collection_id, motion=progs.motion, programs=picked
    )
    if kept != (int(movies_in_ispyb or 0), *in_ispyb):
        return None
    found = _series_rows.read(session, data_collection_id=data_collection_id, motion=progs.motion)
    movie_ids = found.movies[:, 0]
    n = len(movie_ids)
    rows = found.results
    at = np.searchsorted(movie_ids, rows[:, 0])  # each row's movie (both in movie order)
    known = at < n
    known[known] = movie_ids[at[known]] == rows[known, 0]
    rows, at = rows[known], at[known]

    def column(values: np.ndarray, *, where: Any = None, integer: bool = False) -> list[Any]:
        out = np.full(n, np.nan)
        if where is None:
            out[at] = values
        else:
            out[at[where]] = values[where]
        return _listed(out, integer=integer)

    ctf, ice, picker = (
        rows[:, i] == (-1 if p is None else p) for i, p in zip((3, 7, 9), picked, strict=True)
    )
    return {
        "movie_id": _listed(movie_ids, integer=True),
        "movie_number": _listed(found.movies[:, 1], integer=True),
        "name": found.names,
        "created": _listed(found.movies[:, 2], integer=True),
        "total_motion_a": column(rows[:, 2]),
        "defocus_a": column(rows[:, 4], where=ctf),
        "astigmatism_a": column(rows[:, 5], where=ctf),
        "resolution_a": column(rows[:, 6], where=ctf),
        "ice_median": column(rows[:, 8], where=ice),
        "particles": column(rows[:, 10], where=picker, integer=True),
        "programs": progs.__dict__,
        "downsampled_from": None,
    }


def _listed(values: np.ndarray, *, integer: bool = False) -> list[Any]:
    """A float64 column as a list of Python floats (ints if ``integer``), None for NaN."""
    missing = np.isnan(values)
    if integer:
        out: list[Any] = np.where(missing, 0, values).astype(np.int64).tolist()
    else:
        out = values.tolist()
    for i in np.flatnonzero(missing).tolist():
        out[i] = None
    return out


def backfill_summary(connection: sa.Connection) -> None:
    """Fill the series summary from every movie and result ISPyB holds (migration 0007)."""
    _series_rows.backfill(connection)


def version(
    session: Session, *, data_collection_id: int, motion: int | None = None
) -> tuple[int | None, ...]:
    """What a collection's series depends on: its chosen programs and the newest row id of
    each table it reads (each a ``max`` over an index, cheap on 50,000 movies).

    Results are written once per key and new ones get new ids, so the version changes
    whenever a movie or result lands; an in-place update of an existing row (a redelivered
    message rewriting the same values) does not change it.
    """
    progs = programs(session, data_collection_id=data_collection_id, motion=motion)

    def newest(column: Any, where: Any) -> int | None:
        found = session.scalar(sa.select(sa.func.max(column)).where(where))
        return None if found is None else int(found)

    return (
        progs.motion,
        progs.ctf,
        progs.ice,
        progs.picker,
        newest(Movie.movieId, Movie.dataCollectionId == data_collection_id),
        newest(
            MotionCorrection.motionCorrectionId,
            MotionCorrection.autoProcProgramId == (progs.motion or -1),
        ),
        newest(CTF.ctfId, CTF.autoProcProgramId == (progs.ctf or -1)),
        newest(
            RelativeIceThickness.relativeIceThicknessId,
            RelativeIceThickness.autoProcProgramId == (progs.ice or -1),
        ),
        newest(ParticlePicker.particlePickerId, ParticlePicker.programId == (progs.picker or -1)),
    )


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


RATE_WINDOW = dt.timedelta(minutes=15)  # the recent rate an ETA is estimated from


def _recent_done(session: Session, data_collection_id: int, now: dt.datetime) -> int:
    """Movies of the collection's runs whose work closed (done or failed, not cancelled) in
    the last :data:`RATE_WINDOW`, by the work ledger."""
    candidates = _job_programs(session, data_collection_id)
    if not candidates:
        return 0
    return int(
        session.scalar(
            sa.select(sa.func.count())
            .select_from(WorkItem)
            .where(
                WorkItem.done_at >= now - RATE_WINDOW,
                WorkItem.done_at <= now,
                sa.func.coalesce(WorkItem.outcome, "done") != "cancelled",
                sa.or_(*(WorkItem.key.startswith(f"movie:{p}:") for p in candidates)),
            )
        )
        or 0
    )


def progress(
    session: Session, *, data_collection_id: int, counts: dict[str, Any], now: dt.datetime
) -> dict[str, Any]:
    """Per stage, how much is done and the backlog (what the stage before it has and it has
    not), and an ETA for the movies not yet through CTF from the rate of the last 15 minutes.
    Particle extraction is not recorded in ISPyB: "in 2D" counts the particles of the
    classified batches against those picked."""
    movies = counts["movies"]
    batches = gallery(session, data_collection_id=data_collection_id)
    in_2d = sum(b.particles for b in batches)
    picked_particles = counts["particles"] or 0
    stages = [
        ("movies", "Movies", movies, 0),
        ("motion_corrected", "Motion corrected", counts["motion_corrected"], movies),
        ("ctf_estimated", "CTF estimated", counts["ctf_estimated"], counts["motion_corrected"]),
        ("picked", "Picked (micrographs)", counts["picked"], counts["motion_corrected"]),
        ("in_2d", "Particles in 2D", in_2d, picked_particles),
    ]
    chosen = selected_particle_count(session, data_collection_id=data_collection_id)
    recent = _recent_done(session, data_collection_id, now)
    behind = max(0, movies - counts["ctf_estimated"])
    rate_per_h = recent * (dt.timedelta(hours=1) / RATE_WINDOW)
    return {
        "stages": [
            {"stage": key, "label": label, "done": done, "backlog": max(0, before - done)}
            for key, label, done, before in stages
        ],
        "selected_particles": chosen,
        "movies_per_hour": rate_per_h,
        "eta_s": None if not behind or not recent else behind / rate_per_h * 3600,
        "behind": behind,
    }


def summary(
    session: Session, *, data_collection_id: int, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Counts and means of a collection's results (the chosen programs'), table by table, and
    the :func:`progress` of its stages (``now``: naive UTC, for the recent rate)."""
    progs = programs(session, data_collection_id=data_collection_id)

    def one(*columns: Any, where: Any) -> Any:
        return session.execute(sa.select(*columns).where(where)).one()

    movies, latest = one(
        sa.func.count(),
        sa.func.max(Movie.movieId),
        where=Movie.dataCollectionId == data_collection_id,
    )
    motion = one(
        sa.func.count(),
        sa.func.avg(MotionCorrection.totalMotion),
        where=MotionCorrection.autoProcProgramId == (progs.motion or -1),
    )
    ctf = one(
        sa.func.count(),
        sa.func.avg(CTF.estimatedDefocus),
        sa.func.avg(CTF.estimatedResolution),
        sa.func.min(CTF.estimatedResolution),
        where=CTF.autoProcProgramId == (progs.ctf or -1),
    )
    ice = one(sa.func.count(), where=RelativeIceThickness.autoProcProgramId == (progs.ice or -1))
    particles, picked = one(
        sa.func.sum(ParticlePicker.numberOfParticles),
        sa.func.count(),
        where=ParticlePicker.programId == (progs.picker or -1),
    )
    counts = {
        "movies": int(movies),
        "picked": int(picked),
        "motion_corrected": int(motion[0]),
        "ctf_estimated": int(ctf[0]),
        "ice_measured": int(ice[0]),
        "mean_total_motion_a": _number(motion[1]),
        "mean_defocus_a": _number(ctf[1]),
        "mean_resolution_a": _number(ctf[2]),
        "best_resolution_a": _number(ctf[3]),
        "particles": None if particles is None else int(particles),
        "latest_movie_id": int(latest or 0),
    }
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return counts | {
        "progress": progress(session, data_collection_id=data_collection_id, counts=counts, now=now)
    }


def movie(session: Session, *, movie_id: int, motion: int | None = None) -> dict[str, Any] | None:
    """One movie and its results from the collection's chosen programs; None if unknown."""
    dc = session.scalar(sa.select(Movie.dataCollectionId).where(Movie.movieId == movie_id))
    if dc is None:
        return None
    progs = programs(session, data_collection_id=int(dc), motion=motion)
    row = session.execute(
        _joined(progs)
        .with_only_columns(
            Movie.movieId,
            Movie.movieNumber,
            Movie.movieFullPath,
            Movie.createdTimeStamp,
            MotionCorrection.totalMotion,
            MotionCorrection.averageMotionPerFrame,
            CTF.estimatedDefocus,
            CTF.astigmatism,
            CTF.astigmatismAngle,
            CTF.estimatedResolution,
            CTF.ccValue,
            RelativeIceThickness.median,
            ParticlePicker.numberOfParticles,
            *FILE_KINDS.values(),
        )
        .where(Movie.movieId == movie_id)
    ).one()
    names = (
        "movie_id",
        "movie_number",
        "path",
        "created",
        "total_motion_a",
        "average_motion_per_frame_a",
        "defocus_a",
        "astigmatism_a",
        "astigmatism_angle_deg",
        "resolution_a",
        "cc_value",
        "ice_median",
        "particles",
    )
    out: dict[str, Any] = {
        name: (float(v) if isinstance(v, int | float) and 4 <= i <= 11 else v)
        for i, (name, v) in enumerate(zip(names, row, strict=False))
    }
    out["created"] = None if row[3] is None else row[3].isoformat()
    out["data_collection_id"] = int(dc)
    out["files"] = [kind for kind, path in zip(FILE_KINDS, row[len(names) :], strict=True) if path]
    return out


def movie_file(session: Session, *, movie_id: int, kind: str) -> str | None:
    """The path of a movie's ``kind`` of file (``FILE_KINDS``) as recorded, or None."""
    if kind not in FILE_KINDS:
        raise ValueError(f"kind: must be one of {', '.join(FILE_KINDS)}, got {kind!r}")
    dc = session.scalar(sa.select(Movie.dataCollectionId).where(Movie.movieId == movie_id))
    if dc is None:
        return None
    progs = programs(session, data_collection_id=int(dc))
    path = session.scalar(
        _joined(progs).with_only_columns(FILE_KINDS[kind]).where(Movie.movieId == movie_id)
    )
    return None if path is None else str(path)


def ctf_sources(session: Session, *, movie_id: int) -> tuple[str | None, str | None]:
    """(CTF diagnostic image, motion-corrected micrograph) of a movie in the run shown, as
    recorded (None where not): where its CTF files are, or, for a fit that was not trusted
    and so never recorded, where they would be."""
    dc = session.scalar(sa.select(Movie.dataCollectionId).where(Movie.movieId == movie_id))
    if dc is None:
        return None, None
    progs = programs(session, data_collection_id=int(dc))
    row = session.execute(
        _joined(progs)
        .with_only_columns(CTF.fftTheoreticalFullPath, MotionCorrection.micrographFullPath)
        .where(Movie.movieId == movie_id)
    ).first()
    if row is None:
        return None, None
    return (None if row[0] is None else str(row[0]), None if row[1] is None else str(row[1]))


def movie_session(session: Session, *, movie_id: int) -> tuple[int, int] | None:
    """(data collection id, visit's session id) of a movie, or None if unknown."""
    row = session.execute(
        sa.select(Movie.dataCollectionId, DataCollection.SESSIONID)
        .join(DataCollection, DataCollection.dataCollectionId == Movie.dataCollectionId)
        .where(Movie.movieId == movie_id)
    ).first()
    return None if row is None else (int(row[0]), int(row[1]))


def thinned(columns: dict[str, Any], *, points: int) -> dict[str, Any]:
    """A :func:`series` with at most about ``points`` movies: per bucket of consecutive movies,
    those holding the smallest and largest value of each of :data:`MEASURES` (so every
    outlier stays on the chart). ``downsampled_from``: the number of movies before thinning,
    or None when all are there."""
    positions = extremes_kept(columns, measures=MEASURES, points=points)
    n = len(columns["movie_id"])
    return take(columns, positions) | {"downsampled_from": n if len(positions) < n else None}
