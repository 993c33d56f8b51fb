"""Pausing a data collection holds its new work (registered, recorded, not published);
resuming publishes it: every movie is processed, none twice."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from ispyb.sqlalchemy import DataCollection, MotionCorrection, Movie

from cryolive.db.repo import pause
from cryolive.pipeline.runtime import VisitFolder, start_pipeline


def _wait(predicate: Callable[[], bool], timeout_s: float = 120.0) -> None:
    deadline = time.time() + timeout_s
    while not predicate():
        assert time.time() < deadline, "condition not met in time"
        time.sleep(0.2)


def test_paused_work_is_held_then_processed_once_on_resume(
    sqlite_db: str, two_grid_visit: Path, visit_copy: Callable[[Path], Path], tmp_path: Path
) -> None:
    visit = visit_copy(two_grid_visit)
    data = sorted((visit / "raw").rglob("*_fractions.tiff"))
    assert len(data) == 3
    stash = tmp_path / "later"
    stash.mkdir()
    later = []  # the second and third movies arrive while the collection is paused
    for movie in data[1:]:
        stem = movie.name.removesuffix("_fractions.tiff")
        for f in movie.parent.glob(f"{stem}*"):
            later.append((stash / f.name, f))
            shutil.move(f, stash / f.name)
    pipeline = start_pipeline(
        database_url=sqlite_db,
        broker_url="memory://pause",
        visits=[VisitFolder(visit, "bi23047-5", "m02")],
        services=["motioncorr", "writer"],
        poll_s=0.3,
        settle_s=1.0,
    )

    def corrected(folder: str) -> list[int]:
        with pipeline.sessions() as session:
            return list(
                session.scalars(
                    sa.select(MotionCorrection.movieId)
                    .join(Movie, Movie.movieId == MotionCorrection.movieId)
                    .join(DataCollection, DataCollection.dataCollectionId == Movie.dataCollectionId)
                    .where(DataCollection.imageDirectory == f"{visit}/{folder}/")
                )
            )

    def registered() -> int:
        with pipeline.sessions() as session:
            return int(
                session.scalar(
                    sa.select(sa.func.count())
                    .select_from(Movie)
                    .where(Movie.movieFullPath.like(f"{visit}/raw/%"))
                )
                or 0
            )

    try:
        _wait(lambda: len(corrected("raw")) == 1)
        with pipeline.sessions.begin() as session:
            dc = session.scalar(
                sa.select(DataCollection.dataCollectionId).where(
                    DataCollection.imageDirectory == f"{visit}/raw/"
                )
            )
            assert pause.pause(session, data_collection_id=dc, login="ann")
        for source, target in later:
            shutil.move(source, target)
        _wait(lambda: registered() == 3)
        _wait(lambda: len(corrected("raw2")) == 3)  # the other collection goes on meanwhile
        time.sleep(1.0)  # a few more polls
        with pipeline.sessions() as session:
            held = pause.held_count(session, data_collection_id=dc)
        assert held == 2
        assert len(corrected("raw")) == 1  # nothing of the paused collection processed
        assert pipeline.transport.depth("motioncorr") == 0  # held, not queued
        with pipeline.sessions.begin() as session:
            assert pause.resume(session, data_collection_id=dc)
        _wait(lambda: len(corrected("raw")) == 3)
        time.sleep(1.0)  # a duplicate would land by now
        done = corrected("raw")
        with pipeline.sessions() as session:
            held_after = pause.held_count(session, data_collection_id=dc)
    finally:
        pipeline.stop()
    assert sorted(done) == sorted(set(done)) and len(done) == 3  # each movie once
    assert held_after == 0
    assert pipeline.transport.dead_letters("motioncorr") == []
