"""Per-movie results of a data collection, as columns (for plots) and one movie at a time.

A movie may have been motion corrected by several programs (automatic processing, then a
reprocess); the series shows one: the motion-correction program with the most results (or the
one asked for), and for CTF and ice the program with the most results on that one.
Units: defocus, astigmatism, resolution and motion in Å (positive defocus is underfocus).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from ispyb.sqlalchemy import (
    CTF,
    DataCollection,
    MotionCorrection,
    Movie,
    ParticlePicker,
    RelativeIceThickness,
)
from sqlalchemy.orm import Session

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
    "created",
    "total_motion_a",
    "defocus_a",
    "astigmatism_a",
    "resolution_a",
    "ice_median",
    "particles",
)


@dataclass(frozen=True)
class Programs:
    """The programs whose results a collection's series shows (None: no results yet)."""

    motion: int | None
    ctf: int | None
    ice: int | None
    picker: int | None


def _most_results(session: Session, column: Any, *where: Any) -> int | None:
    found = session.execute(
        sa.select(column).where(*where).group_by(column).order_by(sa.func.count().desc()).limit(1)
    ).first()
    return None if found is None else int(found[0])


def programs(session: Session, *, data_collection_id: int, motion: int | None = None) -> Programs:
    if motion is None:
        motion = _most_results(
            session,
            MotionCorrection.autoProcProgramId,
            MotionCorrection.dataCollectionId == data_collection_id,
        )
    if motion is None:
        return Programs(None, None, None, None)
    on_motion = (
        MotionCorrection.dataCollectionId == data_collection_id,
        MotionCorrection.autoProcProgramId == motion,
    )

    def on(program: Any, parent: Any) -> int | None:
        return _most_results(
            session,
            program,
            parent == MotionCorrection.motionCorrectionId,
            *on_motion,
        )

    return Programs(
        motion=motion,
        ctf=on(CTF.autoProcProgramId, CTF.motionCorrectionId),
        ice=on(RelativeIceThickness.autoProcProgramId, RelativeIceThickness.motionCorrectionId),
        picker=on(ParticlePicker.programId, ParticlePicker.firstMotionCorrectionId),
    )


def _joined(progs: Programs) -> Any:
    """Movie, with the chosen programs' results joined on (left joins: missing is NULL)."""
    motion = sa.and_(
        MotionCorrection.movieId == Movie.movieId,
        MotionCorrection.autoProcProgramId == (progs.motion or -1),
    )
    ctf = sa.and_(
        CTF.motionCorrectionId == MotionCorrection.motionCorrectionId,
        CTF.autoProcProgramId == (progs.ctf or -1),
    )
    ice = sa.and_(
        RelativeIceThickness.motionCorrectionId == MotionCorrection.motionCorrectionId,
        RelativeIceThickness.autoProcProgramId == (progs.ice or -1),
    )
    picker = sa.and_(
        ParticlePicker.firstMotionCorrectionId == MotionCorrection.motionCorrectionId,
        ParticlePicker.programId == (progs.picker or -1),
    )
    return (
        sa.select(Movie)
        .outerjoin(MotionCorrection, motion)
        .outerjoin(CTF, ctf)
        .outerjoin(RelativeIceThickness, ice)
        .outerjoin(ParticlePicker, picker)
    )


def series(
    session: Session, *, data_collection_id: int, after_movie_id: int = 0, motion: int | None = None
) -> dict[str, Any]:
    """Every movie after ``after_movie_id`` in acquisition order, as columns (``SERIES_COLUMNS``).

    ``created`` is in seconds since the epoch (UTC as recorded).
    """
    progs = programs(session, data_collection_id=data_collection_id, motion=motion)
    query = (
        _joined(progs)
        .with_only_columns(
            Movie.movieId,
            Movie.movieNumber,
            Movie.createdTimeStamp,
            MotionCorrection.totalMotion,
            CTF.estimatedDefocus,
            CTF.astigmatism,
            CTF.estimatedResolution,
            RelativeIceThickness.median,
            ParticlePicker.numberOfParticles,
        )
        .where(Movie.dataCollectionId == data_collection_id, Movie.movieId > after_movie_id)
        .order_by(Movie.movieId)
    )
    rows = session.execute(query).all()
    columns: list[list[Any]] = [list(c) for c in zip(*rows, strict=True)] if rows else []
    if not columns:
        columns = [[] for _ in SERIES_COLUMNS]
    columns[2] = [None if t is None else int(t.timestamp()) for t in columns[2]]
    for i in (3, 4, 5, 6, 7):
        columns[i] = [None if v is None else float(v) for v in columns[i]]
    out: dict[str, Any] = dict(zip(SERIES_COLUMNS, columns, strict=True))
    out["programs"] = progs.__dict__
    return out


def summary(session: Session, *, data_collection_id: int) -> dict[str, Any]:
    """Counts and means of a collection's results (the chosen programs')."""
    progs = programs(session, data_collection_id=data_collection_id)
    row = session.execute(
        _joined(progs)
        .with_only_columns(
            sa.func.count(Movie.movieId),
            sa.func.count(MotionCorrection.motionCorrectionId),
            sa.func.count(CTF.ctfId),
            sa.func.count(RelativeIceThickness.relativeIceThicknessId),
            sa.func.avg(MotionCorrection.totalMotion),
            sa.func.avg(CTF.estimatedDefocus),
            sa.func.avg(CTF.estimatedResolution),
            sa.func.min(CTF.estimatedResolution),
            sa.func.sum(ParticlePicker.numberOfParticles),
            sa.func.max(Movie.movieId),
        )
        .where(Movie.dataCollectionId == data_collection_id)
    ).one()
    names = (
        "movies",
        "motion_corrected",
        "ctf_estimated",
        "ice_measured",
        "mean_total_motion_a",
        "mean_defocus_a",
        "mean_resolution_a",
        "best_resolution_a",
        "particles",
        "latest_movie_id",
    )
    values = [None if v is None else (int(v) if i < 4 else float(v)) for i, v in enumerate(row)]
    out = dict(zip(names, values, strict=True))
    out["latest_movie_id"] = int(row[9] or 0)
    out["particles"] = None if row[8] is None else int(row[8])
    return out


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


def movie_session(session: Session, *, movie_id: int) -> tuple[int, int] | None:
    """(data collection id, visit's session id) of a movie, or None if unknown."""
    row = session.execute(
        sa.select(Movie.dataCollectionId, DataCollection.SESSIONID)
        .join(DataCollection, DataCollection.dataCollectionId == Movie.dataCollectionId)
        .where(Movie.movieId == movie_id)
    ).first()
    return None if row is None else (int(row[0]), int(row[1]))
