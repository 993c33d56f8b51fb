"""Writing per-movie results: Movie → MotionCorrection → CTF / RelativeIceThickness.

Each function takes a batch, resolves parents by natural key, upserts, and returns the row ids
in order. Records may arrive in any order across batches, but a parent must have been written
before (or in the same call of :func:`write_result_sets` as) its children.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from ispyb.sqlalchemy import CTF, MotionCorrection, Movie, RelativeIceThickness
from sqlalchemy.orm import Session

from cryolive.db.records import (
    CtfRecord,
    IceThicknessRecord,
    MotionCorrectionRecord,
    MovieRecord,
)
from cryolive.db.repo._keys import require, table_of, upsert_many

MOVIE = table_of(Movie)
MOTION_CORRECTION = table_of(MotionCorrection)
CTF_TABLE = table_of(CTF)
ICE = table_of(RelativeIceThickness)


def write_movies(session: Session, *, records: Sequence[MovieRecord]) -> list[int]:
    return upsert_many(session, table=MOVIE, rows=[(r.key, r.values()) for r in records])


def write_motion_corrections(
    session: Session, *, records: Sequence[MotionCorrectionRecord]
) -> list[int]:
    movie_ids = require(session, table=MOVIE, keys=[r.movie.key for r in records])
    rows = [
        (
            r.key,
            r.values()
            | {"movieId": movie_ids[r.movie.key], "dataCollectionId": r.movie.data_collection_id},
        )
        for r in records
    ]
    return upsert_many(session, table=MOTION_CORRECTION, rows=rows)


def _write_on_motion_correction(
    session: Session,
    *,
    table: sa.Table,
    records: Sequence[CtfRecord] | Sequence[IceThicknessRecord],
) -> list[int]:
    mc_ids = require(
        session, table=MOTION_CORRECTION, keys=[r.motion_correction_key for r in records]
    )
    rows = [
        (r.key, r.values() | {"motionCorrectionId": mc_ids[r.motion_correction_key]})
        for r in records
    ]
    return upsert_many(session, table=table, rows=rows)


def write_ctfs(session: Session, *, records: Sequence[CtfRecord]) -> list[int]:
    return _write_on_motion_correction(session, table=CTF_TABLE, records=records)


def write_ice_thickness(session: Session, *, records: Sequence[IceThicknessRecord]) -> list[int]:
    return _write_on_motion_correction(session, table=ICE, records=records)


def write_result_sets(
    session: Session,
    *,
    movies: Sequence[MovieRecord] = (),
    motion_corrections: Sequence[MotionCorrectionRecord] = (),
    ctfs: Sequence[CtfRecord] = (),
    ice: Sequence[IceThicknessRecord] = (),
) -> None:
    """Write a batch of results of several kinds, parents first."""
    write_movies(session, records=movies)
    write_motion_corrections(session, records=motion_corrections)
    write_ctfs(session, records=ctfs)
    write_ice_thickness(session, records=ice)
