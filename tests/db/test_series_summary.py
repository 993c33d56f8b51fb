"""The series summary kept by the writer (``cryolive_series_row``): the whole series read from
it equals the one joined from ISPyB's tables, on a generated collection with gaps, a reprocess
and re-runs; rows the writer did not see send the read back to ISPyB."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import sqlalchemy as sa
from ispyb.sqlalchemy import CTF, MotionCorrection
from sqlalchemy.orm import Session

from cryolive.db.models import SeriesRow
from cryolive.db.repo import _series_rows, collections, results, series
from cryolive.records import (
    CtfRecord,
    IceThicknessRecord,
    MotionCorrectionRecord,
    MovieRecord,
    MovieRef,
    ParticlePickerRecord,
)

START = dt.datetime(2026, 11, 20, 9, 0, 0)
N = 160


def _program(db: Session, c: Any, recipe: str, key: str = "auto") -> int:
    return collections.register_processing_job(
        db,
        data_collection_id=c.data_collection_id,
        recipe=recipe,
        request_key=key,
        parameters={"stage": recipe},
        automatic=key == "auto",
    )[1]


def _generate(db: Session, c: Any, rng: np.random.Generator) -> dict[str, int]:
    """A collection of :data:`N` movies with values that need all of a FLOAT's digits, some
    movies without motion correction, some micrographs without CTF, ice or picks, a
    reprocess of a third of them, and every batch written twice (a re-run)."""
    picker = _program(db, c, "picking")
    reprocess = _program(db, c, "spa-preprocess", key="reprocess-1")
    refs = [
        MovieRef(
            data_collection_id=c.data_collection_id,
            movie_full_path=f"/raw/GridSquare_{i % 7}/Data/FoilHole_{i} é_fractions.tiff",
        )
        for i in range(N)
    ]
    motion = [r for r in refs if rng.random() < 0.9]
    fitted = [r for r in motion if rng.random() < 0.85]

    def on(ref: MovieRef, mc: int, program: int) -> dict[str, Any]:
        return {"movie": ref, "motion_correction_program_id": mc, "auto_proc_program_id": program}

    def quartiles() -> list[float]:
        return sorted(float(v) for v in rng.uniform(0.1, 2, size=5))

    def batch(lo: int, hi: int) -> dict[str, list[Any]]:
        part = set(refs[lo:hi])
        return {
            "movies": [
                MovieRecord(
                    movie=r,
                    movie_number=i if i % 11 else None,
                    created=START + dt.timedelta(seconds=float(rng.uniform(0, 1e5))),
                )
                for i, r in enumerate(refs)
                if r in part
            ],
            "motion_corrections": [
                MotionCorrectionRecord(
                    movie=r,
                    auto_proc_program_id=c.motion_program_id,
                    total_motion_a=float(rng.uniform(1, 80)),
                )
                for r in motion
                if r in part
            ],
            "ctfs": [
                CtfRecord(
                    **on(r, c.motion_program_id, c.ctf_program_id),
                    estimated_defocus_a=float(rng.uniform(5e3, 4e4)),
                    astigmatism_a=float(rng.uniform(0, 900)) if rng.random() < 0.9 else None,
                    estimated_resolution_a=float(rng.uniform(2.5, 12)),
                )
                for r in fitted
                if r in part
            ],
            "ice": [
                IceThicknessRecord(
                    **on(r, c.motion_program_id, c.ice_program_id),
                    **dict(
                        zip(("minimum", "q1", "median", "q3", "maximum"), quartiles(), strict=True)
                    ),
                )
                for r in fitted
                if r in part and rng.random() < 0.8
            ],
            "picks": [
                ParticlePickerRecord(
                    **on(r, c.motion_program_id, picker),
                    number_of_particles=int(rng.integers(0, 900)),
                )
                for r in motion
                if r in part and rng.random() < 0.7
            ],
        }

    for lo in range(0, N, 100):
        sets = batch(lo, lo + 100)
        results.write_result_sets(db, **sets)
        results.write_result_sets(db, **sets)  # a redelivered batch: the same rows again
    # results landing one kind at a time, as the live writer gets them
    stage = batch(0, N)
    results.write_result_sets(db, motion_corrections=stage["motion_corrections"][:5])
    results.write_result_sets(db, ctfs=stage["ctfs"][:5])
    results.write_result_sets(db, ice=stage["ice"][:5])
    results.write_result_sets(db, picks=stage["picks"][:5])
    redo = refs[: N // 3]
    results.write_result_sets(
        db,
        motion_corrections=[
            MotionCorrectionRecord(
                movie=r, auto_proc_program_id=reprocess, total_motion_a=float(rng.uniform(1, 80))
            )
            for r in redo
        ],
        ctfs=[
            CtfRecord(
                **on(r, reprocess, reprocess), estimated_defocus_a=float(rng.uniform(5e3, 4e4))
            )
            for r in redo[::2]
        ],
    )
    return {"picker": picker, "reprocess": reprocess}


def _both(db: Session, dc: int, motion: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    kept = series.series(db, data_collection_id=dc, motion=motion)
    joined = series.series(db, data_collection_id=dc, motion=motion, summary=False)
    return kept, joined


def _read_from_summary(db: Session, dc: int, motion: int) -> bool:
    """Whether the whole series comes from the summary: a value changed there shows."""
    first = db.scalar(
        sa.select(sa.func.min(SeriesRow.movie_id)).where(
            SeriesRow.data_collection_id == dc, SeriesRow.motion_program_id == motion
        )
    )
    row = (SeriesRow.data_collection_id == dc) & (SeriesRow.movie_id == first)
    db.execute(
        sa.update(SeriesRow)
        .where(row, SeriesRow.motion_program_id == motion)
        .values(total_motion=-7)
    )
    shown = series.series(db, data_collection_id=dc, motion=motion)
    index = shown["movie_id"].index(first)
    return bool(shown["total_motion_a"][index] == -7)


def test_the_summary_gives_the_series_joined_from_ispyb(db: Session, collection: Any) -> None:
    c, dc = collection, collection.data_collection_id
    extra = _generate(db, c, np.random.default_rng(22))
    kept, joined = _both(db, dc)
    assert kept["programs"] == joined["programs"]
    assert kept["programs"]["picker"] == extra["picker"]
    assert len(kept["movie_id"]) == N
    for name in series.SERIES_COLUMNS:
        assert kept[name] == joined[name], name  # exact: the same floats, Nones and names
    assert None in kept["defocus_a"] and None in kept["total_motion_a"]
    assert None in kept["movie_number"] and None in kept["astigmatism_a"]
    assert kept["name"][0] == "FoilHole_0 é_fractions.tiff"
    thinned = series.thinned(kept, points=40)
    assert thinned == series.thinned(joined, points=40)
    # the reprocess, shown when asked for: its own motion and CTF, no ice or picks
    again, joined_again = _both(db, dc, motion=extra["reprocess"])
    assert again == joined_again
    assert sum(v is not None for v in again["total_motion_a"]) == N // 3
    assert sum(v is not None for v in again["defocus_a"]) == len(range(0, N // 3, 2))
    # one row per movie and per motion program, however often the batches came
    assert (
        db.scalar(sa.select(sa.func.count()).where(SeriesRow.data_collection_id == dc))
        == N + sum(v is not None for v in joined["total_motion_a"]) + N // 3
    )
    if db.get_bind().dialect.name == "mysql":  # packed by the server, split here: the same rows
        for motion in (c.motion_program_id, extra["reprocess"]):
            plain = _series_rows.read(db, data_collection_id=dc, motion=motion, packed=False)
            packed = _series_rows.read(db, data_collection_id=dc, motion=motion, packed=True)
            assert packed.names == plain.names
            np.testing.assert_array_equal(packed.movies, plain.movies)
            np.testing.assert_array_equal(packed.results, plain.results)
    assert _read_from_summary(db, dc, c.motion_program_id)


def test_rows_the_writer_did_not_see_are_read_from_ispyb(db: Session, collection: Any) -> None:
    """A CTF fit another ISPyB client wrote (or a database written before the summary) makes
    the counts differ: the series comes from ISPyB's tables, with that fit in it."""
    c, dc = collection, collection.data_collection_id
    _generate(db, c, np.random.default_rng(7))
    bare = db.scalar(
        sa.select(MotionCorrection.motionCorrectionId)
        .outerjoin(CTF, CTF.motionCorrectionId == MotionCorrection.motionCorrectionId)
        .where(MotionCorrection.autoProcProgramId == c.motion_program_id, CTF.ctfId.is_(None))
        .limit(1)
    )
    assert bare is not None
    db.execute(
        sa.insert(CTF).values(
            motionCorrectionId=bare, autoProcProgramId=c.ctf_program_id, estimatedDefocus=12345.5
        )
    )
    kept, joined = _both(db, dc)
    assert kept == joined and 12345.5 in kept["defocus_a"]
    assert not _read_from_summary(db, dc, c.motion_program_id)
    # the writer's next touch of that micrograph brings the summary back in line
    _series_rows.refresh(db, motion_correction_ids=[bare])
    assert _read_from_summary(db, dc, c.motion_program_id)


def test_the_backfill_rebuilds_the_summary_from_ispyb(db: Session, collection: Any) -> None:
    c, dc = collection, collection.data_collection_id
    _generate(db, c, np.random.default_rng(3))
    before = series.series(db, data_collection_id=dc)
    db.execute(sa.delete(SeriesRow).where(SeriesRow.data_collection_id == dc))
    assert series.series(db, data_collection_id=dc) == before  # empty: ISPyB is read
    _series_rows.backfill(db.connection())
    assert series.series(db, data_collection_id=dc) == before
    assert _read_from_summary(db, dc, c.motion_program_id)
