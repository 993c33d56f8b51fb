"""The per-movie series read for plots: values, creation times and the version that keys the
web server's cache of it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from cryolive.db.repo import collections, results, series
from cryolive.records import CtfRecord, MotionCorrectionRecord, MovieRecord, MovieRef

START = dt.datetime(2026, 11, 20, 9, 0, 0)


def _write(db: Session, c: Any, numbers: range) -> None:
    refs = [
        MovieRef(data_collection_id=c.data_collection_id, movie_full_path=f"/raw/FoilHole_{i}.tiff")
        for i in numbers
    ]
    results.write_result_sets(
        db,
        movies=[
            MovieRecord(movie=r, movie_number=i, created=START + dt.timedelta(seconds=90 * i))
            for i, r in zip(numbers, refs, strict=True)
        ],
        motion_corrections=[
            MotionCorrectionRecord(movie=r, auto_proc_program_id=c.motion_program_id) for r in refs
        ],
    )


def test_series_gives_creation_times_in_epoch_seconds_utc_as_recorded(
    db: Session, collection: Any
) -> None:
    _write(db, collection, range(3))
    out = series.series(db, data_collection_id=collection.data_collection_id)
    epoch = int(START.replace(tzinfo=dt.UTC).timestamp())
    assert out["created"] == [epoch, epoch + 90, epoch + 180]
    assert out["movie_number"] == [0, 1, 2]
    assert out["name"] == ["FoilHole_0.tiff", "FoilHole_1.tiff", "FoilHole_2.tiff"]  # no folder
    assert out["defocus_a"] == [None, None, None]


def test_version_changes_when_a_movie_or_a_result_lands(db: Session, collection: Any) -> None:
    dc = collection.data_collection_id
    _write(db, collection, range(2))
    before = series.version(db, data_collection_id=dc)
    assert series.version(db, data_collection_id=dc) == before  # nothing new: same version
    _write(db, collection, range(2, 3))
    with_movie = series.version(db, data_collection_id=dc)
    assert with_movie != before
    ref = MovieRef(data_collection_id=dc, movie_full_path="/raw/FoilHole_0.tiff")
    results.write_result_sets(
        db,
        ctfs=[
            CtfRecord(
                movie=ref,
                motion_correction_program_id=collection.motion_program_id,
                auto_proc_program_id=collection.ctf_program_id,
                estimated_defocus_a=12_000.0,
            )
        ],
    )
    assert series.version(db, data_collection_id=dc) != with_movie
    assert series.series(db, data_collection_id=dc)["defocus_a"] == [12_000.0, None, None]


def test_every_table_shows_the_run_of_the_shown_motion_corrections(
    db: Session, collection: Any
) -> None:
    """During a reprocess the automatic run has more motion corrections but the reprocess has
    more CTF fits: CTF must still come from the automatic run's micrographs, not the other's."""
    c = collection
    reprocess = collections.register_processing_job(
        db,
        data_collection_id=c.data_collection_id,
        recipe="spa-preprocess",
        request_key="reprocess-1",
        parameters={},
        automatic=False,
    )[1]
    _write(db, c, range(3))  # the automatic run: 3 motion corrections, 1 CTF fit
    refs = [
        MovieRef(data_collection_id=c.data_collection_id, movie_full_path=f"/raw/FoilHole_{i}.tiff")
        for i in range(3)
    ]

    def fit(ref: MovieRef, *, motion: int, program: int, defocus_a: float) -> CtfRecord:
        return CtfRecord(
            movie=ref,
            motion_correction_program_id=motion,
            auto_proc_program_id=program,
            estimated_defocus_a=defocus_a,
        )

    results.write_result_sets(
        db,
        motion_corrections=[
            MotionCorrectionRecord(movie=r, auto_proc_program_id=reprocess) for r in refs[:2]
        ],
        ctfs=[fit(refs[0], motion=c.motion_program_id, program=c.ctf_program_id, defocus_a=1e4)]
        + [fit(r, motion=reprocess, program=reprocess, defocus_a=3e4) for r in refs[:2]],
    )
    out = series.series(db, data_collection_id=c.data_collection_id)
    assert out["programs"]["motion"] == c.motion_program_id
    assert out["programs"]["ctf"] == c.ctf_program_id
    assert out["defocus_a"] == [1e4, None, None]
    chosen = series.series(db, data_collection_id=c.data_collection_id, motion=reprocess)
    assert chosen["programs"]["ctf"] == reprocess and chosen["defocus_a"][:2] == [3e4, 3e4]
