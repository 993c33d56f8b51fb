"""The bad-input corpus through the live pipeline (SQLite, embedded broker), beside good movies:
each bad movie gets exactly one recorded, readable failure at its stage, nothing is
dead-lettered or left open, the good movies are processed completely, and a run whose every
movie failed ends "failed"."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from ispyb.sqlalchemy import (
    CTF,
    AutoProcProgram,
    AutoProcProgramMessage,
    DataCollection,
    MotionCorrection,
    Movie,
)

from cryolive.config import WatcherSettings
from cryolive.errors import printable
from cryolive.pipeline.requests import request_run
from cryolive.pipeline.runtime import VisitFolder, start_pipeline
from cryolive.simulate.corpus import KINDS, needs_own_folder, write_case


def test_every_bad_movie_is_one_recorded_failure_and_the_good_ones_are_processed(
    sqlite_db: str, two_grid_visit: Path, visit_copy: Callable[[Path], Path], done: Callable
) -> None:
    visit = visit_copy(two_grid_visit)  # raw, raw2: three good 1k movies each
    cases = []
    for index in range(len(KINDS)):
        folder = f"raw{10 + index}" if needs_own_folder(index) else "raw9"
        cases.append(write_case(index, visit / folder))
    pipeline = start_pipeline(
        database_url=sqlite_db,
        broker_url="memory://corpus",
        visits=[VisitFolder(visit, "bi23047-5", "m02")],
        poll_s=0.3,
        settle_s=1.0,
        # truncated files stand still: registered after 2 s, so that their failure is recorded
        watcher=WatcherSettings(incomplete_wait_s=2.0),
    )
    try:
        done(pipeline.sessions, movies=6 + len(cases), timeout_s=180)
        with pipeline.sessions() as session:
            rows = session.execute(
                sa.select(AutoProcProgramMessage.recordTimeStamp, AutoProcProgramMessage.message,
                          AutoProcProgramMessage.description)
            ).all()  # fmt: skip
            descriptions = [(m, d) for _, m, d in rows]
            good = session.scalars(
                sa.select(Movie.movieFullPath).where(
                    Movie.movieFullPath.like(f"{visit}/raw/%")
                    | Movie.movieFullPath.like(f"{visit}/raw2/%")
                )
            ).all()
            corrected = session.scalar(sa.select(sa.func.count()).select_from(MotionCorrection))
            ctfs = session.scalar(sa.select(sa.func.count()).select_from(CTF))
            own = next(c for c in cases if c.own_folder).movie.parents[3]
            gain_dc = session.scalar(
                sa.select(DataCollection.dataCollectionId).where(
                    DataCollection.imageDirectory == f"{own}/"
                )
            )
            assert gain_dc is not None, session.scalars(
                sa.select(DataCollection.imageDirectory)
            ).all()
        # Each bad movie: exactly one failure, at its stage, that names the file on one line.
        for case in cases:
            name = printable(str(case.movie))
            found = [(m, d) for m, d in descriptions if d.startswith(name + ": ")]
            assert len(found) == 1, (case.kind, found)
            message, description = found[0]
            assert message.startswith(case.stage + ": "), (case.kind, message)
            assert "\n" not in description and len(description) > len(name) + 10, case.kind
        assert len(descriptions) == len(cases)  # and none for the good movies
        # The good movies beside them were processed completely.
        assert len(good) == 6 and corrected == 6 and ctfs == 6
        # Nothing was dead-lettered (bad input is recorded, not dead-lettered) …
        for queue in ("motioncorr", "ctf", "ice", "pick", "class2d", "writer"):
            assert pipeline.transport.dead_letters(queue) == [], queue
        # … and a requested run whose every movie fails ends "failed", not "success".
        with pipeline.sessions.begin() as session:
            _, program = request_run(
                session,
                data_collection_id=gain_dc,
                recipe="spa-preprocess",
                parameters={},
                requested_by="alice",
            )
        deadline = time.time() + 60
        status = None
        while time.time() < deadline and status is None:
            time.sleep(0.3)
            with pipeline.sessions() as session:
                ended = session.get(AutoProcProgram, program)
                status = ended.processingStatus if ended is not None else None
                text = ended.processingMessage if ended is not None else ""
        assert status == 0 and text == "all 1 movies failed", text
    finally:
        pipeline.stop()
