"""Writing per-movie results: Movie → MotionCorrection → CTF / RelativeIceThickness.

Each function takes a batch, resolves parents, upserts, and returns the row ids in order.
A movie is found by its natural key (data collection, path); its motion correction by the movie
and the program; a CTF fit or an ice measurement by the motion correction and the program.
Records may arrive in any order across batches, but a parent must have been written before (or
in the same call of :func:`write_result_sets` as) its children.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from ispyb.sqlalchemy import CTF, MotionCorrection, Movie, ParticlePicker, RelativeIceThickness
from sqlalchemy.orm import Session

from cryolive.db.repo import _series_rows
from cryolive.db.repo import _shared as shared
from cryolive.db.repo._children import find_children, upsert_children
from cryolive.db.repo._keys import require, table_of, upsert_many
from cryolive.records import (
    CtfRecord,
    IceThicknessRecord,
    MotionCorrectionRecord,
    MovieRecord,
    ParticlePickerRecord,
)

MOVIE = table_of(Movie)
MOTION_CORRECTION = table_of(MotionCorrection)
CTF_TABLE = table_of(CTF)
ICE = table_of(RelativeIceThickness)
PICKER = table_of(ParticlePicker)
MotionCorrectionKey = tuple[int, str, int]  # data collection, movie path, program


def write_movies(
    session: Session, *, records: Sequence[MovieRecord], summary: bool = True
) -> list[int]:
    """``summary``: copy the movies into the series summary too (False: the caller will)."""
    ids = upsert_many(
        session, table=MOVIE, rows=[(r.key, r.values()) for r in records], adopt=shared.MOVIES
    )
    if summary:
        _series_rows.refresh(session, movie_ids=ids)
    return ids


def update_movie_metadata(session: Session, *, records: Sequence[MovieRecord]) -> list[int]:
    """Write movies' acquisition metadata (metadata that came after the movie was registered),
    leaving what else the rows hold (their foil hole) as it is."""
    rows = [(r.key, {k: v for k, v in r.values().items() if k != "foilHoleId"}) for r in records]
    ids = upsert_many(session, table=MOVIE, rows=rows)
    _series_rows.refresh(session, movie_ids=ids)
    return ids


def write_motion_corrections(
    session: Session,
    *,
    records: Sequence[MotionCorrectionRecord],
    movie_ids: Mapping[Any, int] | None = None,
    summary: bool = True,
) -> list[int]:
    """``movie_ids``: ids of movies the caller has just written, by key (saves a look-up);
    ``summary``: copy the rows into the series summary too (False: the caller will)."""
    movie_ids = require(session, table=MOVIE, keys=[r.movie.key for r in records], known=movie_ids)
    rows = [
        (
            (movie_ids[r.movie.key], r.auto_proc_program_id),
            r.values() | {"dataCollectionId": r.movie.data_collection_id},
        )
        for r in records
    ]
    ids = upsert_children(
        session,
        table=MOTION_CORRECTION,
        parent=MOVIE,
        parent_column="movieId",
        program_column="autoProcProgramId",
        rows=rows,
    )
    if summary:
        _series_rows.refresh(session, motion_correction_ids=ids)
    return ids


def motion_correction_ids(
    session: Session, *, keys: Sequence[MotionCorrectionKey]
) -> dict[MotionCorrectionKey, int]:
    """Ids of recorded motion corrections by (data collection, movie path, program)."""
    movie_ids = require(session, table=MOVIE, keys=[(dc, path) for dc, path, _ in keys])
    found = find_children(
        session,
        table=MOTION_CORRECTION,
        parent_column="movieId",
        program_column="autoProcProgramId",
        keys=[(movie_ids[(dc, path)], program) for dc, path, program in keys],
    )
    missing = [k for k in keys if (movie_ids[k[:2]], k[2]) not in found]
    if missing:
        raise LookupError(f"MotionCorrection: no row recorded for {missing[0]!r}")
    return {k: found[(movie_ids[k[:2]], k[2])] for k in keys}


def _write_on_motion_correction(
    session: Session,
    *,
    table: sa.Table,
    records: Sequence[CtfRecord] | Sequence[IceThicknessRecord] | Sequence[ParticlePickerRecord],
    known: Mapping[Any, int] | None,
    parent_column: str = "motionCorrectionId",
    program_column: str = "autoProcProgramId",
    summary: bool,
) -> list[int]:
    known = known or {}
    unknown = [r.motion_correction_key for r in records if r.motion_correction_key not in known]
    mc_ids = {**known, **(motion_correction_ids(session, keys=unknown) if unknown else {})}
    rows = [
        ((mc_ids[r.motion_correction_key], r.auto_proc_program_id), r.values()) for r in records
    ]
    ids = upsert_children(
        session,
        table=table,
        parent=MOTION_CORRECTION,
        parent_column=parent_column,
        program_column=program_column,
        rows=rows,
    )
    if summary:
        _series_rows.refresh(session, motion_correction_ids=[key[0] for key, _ in rows])
    return ids


def write_particle_pickers(
    session: Session,
    *,
    records: Sequence[ParticlePickerRecord],
    motion_correction_ids: Mapping[Any, int] | None = None,
    summary: bool = True,
) -> list[int]:
    """ParticlePicker rows, one per micrograph and program (ISPyB's firstMotionCorrectionId)."""
    return _write_on_motion_correction(
        session,
        table=PICKER,
        records=records,
        known=motion_correction_ids,
        parent_column="firstMotionCorrectionId",
        program_column="programId",
        summary=summary,
    )


def write_ctfs(
    session: Session,
    *,
    records: Sequence[CtfRecord],
    motion_correction_ids: Mapping[Any, int] | None = None,
    summary: bool = True,
) -> list[int]:
    return _write_on_motion_correction(
        session, table=CTF_TABLE, records=records, known=motion_correction_ids, summary=summary
    )


def write_ice_thickness(
    session: Session,
    *,
    records: Sequence[IceThicknessRecord],
    motion_correction_ids: Mapping[Any, int] | None = None,
    summary: bool = True,
) -> list[int]:
    return _write_on_motion_correction(
        session, table=ICE, records=records, known=motion_correction_ids, summary=summary
    )


def write_result_sets(
    session: Session,
    *,
    movies: Sequence[MovieRecord] = (),
    motion_corrections: Sequence[MotionCorrectionRecord] = (),
    ctfs: Sequence[CtfRecord] = (),
    ice: Sequence[IceThicknessRecord] = (),
    picks: Sequence[ParticlePickerRecord] = (),
) -> None:
    """Write a batch of results of several kinds, parents first (children reuse their ids),
    then copy what changed into the series summary (two statements for the whole batch)."""
    written = write_movies(session, records=movies, summary=False)
    movie_ids = dict(zip([r.key for r in movies], written, strict=True))
    mc_written = write_motion_corrections(
        session, records=motion_corrections, movie_ids=movie_ids, summary=False
    )
    mc_ids = dict(zip([r.key for r in motion_corrections], mc_written, strict=True))
    on_motion = [r.motion_correction_key for r in (*ctfs, *ice, *picks)]
    unknown = list(dict.fromkeys(key for key in on_motion if key not in mc_ids))
    if unknown:  # looked up once here, not once per kind of result
        mc_ids |= motion_correction_ids(session, keys=unknown)
    write_ctfs(session, records=ctfs, motion_correction_ids=mc_ids, summary=False)
    write_ice_thickness(session, records=ice, motion_correction_ids=mc_ids, summary=False)
    write_particle_pickers(session, records=picks, motion_correction_ids=mc_ids, summary=False)
    touched = {*mc_written, *(mc_ids[key] for key in on_motion)}
    _series_rows.refresh(session, movie_ids=written, motion_correction_ids=touched)
