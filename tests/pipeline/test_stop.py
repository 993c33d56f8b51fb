"""Stopping a run cancels its work already queued: workers drop those messages unhandled, and
the ledger records the work as cancelled (not failed), so nothing re-sends it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from ispyb.sqlalchemy import (
    AutoProcProgram,
    DataCollection,
    MotionCorrection,
    Movie,
    ProcessingJob,
)

from cryolive.db import ledger
from cryolive.messaging.worker import Worker
from cryolive.pipeline.requests import stop_run
from cryolive.pipeline.runs import StoppedRuns
from cryolive.pipeline.runtime import VisitFolder, start_pipeline
from cryolive.services.motioncorr import motioncorr_service


def _wait(predicate: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.time() + timeout_s
    while not predicate():
        assert time.time() < deadline, "condition not met in time"
        time.sleep(0.2)


def test_stop_drops_the_queued_work_of_that_run_and_records_it_cancelled(
    sqlite_db: str, two_grid_visit: Path, visit_copy: Callable[[Path], Path]
) -> None:
    visit = visit_copy(two_grid_visit)
    pipeline = start_pipeline(  # no motion correction worker yet: the work waits in its queue
        database_url=sqlite_db,
        broker_url="memory://stop",
        visits=[VisitFolder(visit, "bi23047-5", "m02")],
        services=["writer"],
        poll_s=0.3,
        settle_s=1.0,
    )
    worker = None
    try:

        def queued() -> bool:
            return pipeline.transport.depth("motioncorr") == 6

        _wait(queued)
        with pipeline.sessions.begin() as session:
            program = session.scalar(
                sa.select(AutoProcProgram.autoProcProgramId)
                .join(
                    ProcessingJob,
                    ProcessingJob.processingJobId == AutoProcProgram.processingJobId,
                )
                .join(
                    DataCollection,
                    DataCollection.dataCollectionId == ProcessingJob.dataCollectionId,
                )
                .where(DataCollection.imageDirectory == f"{visit}/raw/")
            )
            stop_run(session, auto_proc_program_id=program, stopped_by="bob")
        worker = Worker(
            pipeline.transport,
            motioncorr_service(),
            queues=["motioncorr"],
            cancelled=StoppedRuns(pipeline.sessions),
        )
        worker.start()

        def three_corrected() -> bool:
            with pipeline.sessions() as session:
                n = session.scalar(sa.select(sa.func.count()).select_from(MotionCorrection))
            return n == 3 and pipeline.transport.depth("motioncorr") == 0

        _wait(three_corrected, timeout_s=120)
        with pipeline.sessions() as session:
            stopped = set(
                session.scalars(
                    sa.select(Movie.movieId).where(Movie.movieFullPath.like(f"{visit}/raw/%"))
                )
            )
            done = set(session.scalars(sa.select(MotionCorrection.movieId)))
            outcomes = ledger.outcomes(session, program_id=program)
    finally:
        if worker is not None:
            worker.stop()
        pipeline.stop()
    assert worker.dropped == 3
    assert not stopped & done  # none of the stopped run's movies was processed
    assert outcomes == {"cancelled": 3}
    assert pipeline.transport.dead_letters("motioncorr") == []
