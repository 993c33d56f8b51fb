"""The writer service takes the result messages already waiting and writes them in one
transaction (issue #22), on SQLite and MariaDB, through the embedded broker and RabbitMQ: one
commit for all, each message acknowledged after it; a message with records that cannot be
written is dead-lettered alone while the others are written; a crash before the commit
leaves every message to be redelivered and written."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from ispyb.sqlalchemy import CTF, MotionCorrection, Movie
from sqlalchemy import event
from sqlalchemy.orm import Session

from cryolive.db import make_engine
from cryolive.db.repo import collections, visits
from cryolive.messaging import Recipe, Transport, Worker, open_transport
from cryolive.messaging.dispatch import envelope_for
from cryolive.messaging.dlq import list_dead
from cryolive.messaging.transport import BatchConsumer
from cryolive.records import CtfRecord, MotionCorrectionRecord, MovieRecord, MovieRef
from cryolive.services._common import sessions_for
from cryolive.services.writer import writer_service

RECIPE = Recipe.model_validate(
    {
        "name": "writer-only",
        "start": ["writer"],
        "steps": {
            "writer": {
                "service": "writer",
                "queue": "writer",
                "parameters": {"records": "{records}"},
            }
        },
    }
)
MOVIES = 5


class Crash(BaseException):
    """The writer's process dying between its statements and its commit."""


@pytest.fixture(params=["embedded", "rabbitmq"])
def transport(request: pytest.FixtureRequest) -> Iterator[Transport]:
    if request.param == "embedded":
        url = f"memory://writer-{uuid.uuid4().hex[:8]}"
    else:
        url = str(request.getfixturevalue("rabbitmq_url"))
    transport = open_transport(url, prefix=f"test-{uuid.uuid4().hex[:10]}.", delivery_limit=2)
    yield transport
    transport.delete_declared()
    transport.close()


@pytest.fixture
def commits(db_url: str) -> Iterator[list[int]]:
    """COMMITs on the writer's engine for ``db_url``, counted as they happen (a connection
    event: savepoints released inside a transaction are not commits)."""
    made: list[int] = []
    engine = sessions_for(db_url).kw["bind"]

    def counted(connection: sa.Connection) -> None:
        made.append(1)

    event.listen(engine, "commit", counted)
    yield made
    event.remove(engine, "commit", counted)


def wait_for(predicate: Callable[[], bool], *, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def setup_collection(db_url: str) -> tuple[int, int, int]:
    """A new data collection with a motion-correction and a CTF program: their ids."""
    engine = make_engine(db_url)
    with Session(engine) as session, session.begin():
        sid = visits.ensure_visit(session, visit=f"bi{uuid.uuid4().int % 10**8}-1")
        _, dc = collections.register_data_collection(
            session, spec=collections.DataCollectionSpec(session_id=sid, image_directory="/raw")
        )
        mc, ctf = (
            collections.register_processing_job(
                session, data_collection_id=dc, recipe=r, request_key="t", parameters={}
            )[1]
            for r in ("mc", "ctf")
        )
    engine.dispose()
    return dc, mc, ctf


def result_set(dc: int, mc: int, ctf: int, i: int) -> list[Any]:
    ref = MovieRef(data_collection_id=dc, movie_full_path=f"/raw/FoilHole_{i}.tiff")
    return [
        MovieRecord(movie=ref, movie_number=i, number_of_frames=40),
        MotionCorrectionRecord(
            movie=ref,
            auto_proc_program_id=mc,
            image_number=i,
            total_motion_a=12.0,
            average_motion_per_frame_a=0.3,
            micrograph_full_path=f"/processed/{i}.mrc",
            drift_plot_full_path=f"/processed/{i}.json",
        ),
        CtfRecord(
            movie=ref,
            motion_correction_program_id=mc,
            auto_proc_program_id=ctf,
            estimated_defocus_a=15_000.0 + i,
            astigmatism_a=200.0,
            astigmatism_angle_deg=12.0,
            estimated_resolution_a=3.5,
            cc_value=0.2,
            box_size=512,
        ),
    ]


def publish(transport: Transport, records: list[Any]) -> None:
    values = {"records": [r.model_dump(mode="json") for r in records]}
    transport.publish("writer", envelope_for(RECIPE, "writer", values).to_bytes())


def written(db_url: str, dc: int) -> dict[str, float]:
    """Defocus by movie path of the CTF rows of data collection ``dc``."""
    engine = make_engine(db_url)
    with Session(engine) as session:
        rows = session.execute(
            sa.select(Movie.movieFullPath, CTF.estimatedDefocus)
            .join(MotionCorrection, MotionCorrection.movieId == Movie.movieId)
            .join(CTF, CTF.motionCorrectionId == MotionCorrection.motionCorrectionId)
            .where(Movie.dataCollectionId == dc)
        ).all()
    engine.dispose()
    return {path: float(defocus) for path, defocus in rows}


def expected(indices: range | list[int]) -> dict[str, float]:
    return {f"/raw/FoilHole_{i}.tiff": 15_000.0 + i for i in indices}


def test_waiting_messages_are_written_in_one_transaction(
    transport: Transport, db_url: str, commits: list[int]
) -> None:
    dc, mc, ctf = setup_collection(db_url)
    for i in range(MOVIES):
        publish(transport, result_set(dc, mc, ctf, i))
    # a later message updates movie 0's CTF: in one batch, the last values win as one by one
    update = result_set(dc, mc, ctf, 0)[2].model_copy(update={"estimated_defocus_a": 21_000.0})
    publish(transport, [update])
    worker = Worker(transport, writer_service(db_url), prefetch=10)
    assert worker.batching
    worker.start()
    try:
        wait_for(lambda: worker.handled == MOVIES + 1)
    finally:
        worker.stop()
    assert written(db_url, dc) == expected(range(MOVIES)) | {"/raw/FoilHole_0.tiff": 21_000.0}
    assert len(commits) == 1  # one commit for the six messages
    assert transport.depth("writer") == 0 and list_dead(transport, "writer") == []


def test_a_message_that_cannot_be_written_is_dead_lettered_alone(
    transport: Transport, db_url: str, commits: list[int]
) -> None:
    dc, mc, ctf = setup_collection(db_url)
    for i in range(MOVIES):
        records = result_set(dc, mc, ctf, i)
        # the third has a CTF of a movie never recorded: no transaction can write it
        publish(transport, records[2:] if i == 2 else records)
    service = dataclasses.replace(writer_service(db_url), max_attempts=1)  # no 30 min of retries
    worker = Worker(transport, service, prefetch=10)
    worker.start()
    try:
        wait_for(lambda: worker.handled == MOVIES)
    finally:
        worker.stop()
    assert written(db_url, dc) == expected([0, 1, 3, 4])
    assert len(commits) == 4  # the batch rolled back; then one transaction per good message
    (dead,) = list_dead(transport, "writer")
    assert "FoilHole_2" in dead.reason or "MotionCorrection" in dead.reason, dead.reason
    assert transport.depth("writer") == 0


def test_a_crash_before_the_commit_loses_nothing(
    transport: Transport, db_url: str, commits: list[int]
) -> None:
    assert isinstance(transport, BatchConsumer)
    dc, mc, ctf = setup_collection(db_url)
    for i in range(MOVIES):
        publish(transport, result_set(dc, mc, ctf, i))
    factory = sessions_for(db_url)

    def die(session: Session) -> None:
        raise Crash

    crashing = Worker(transport, writer_service(db_url), prefetch=10)
    stop, crashed = threading.Event(), threading.Event()

    def consume() -> None:  # the writer's consumer thread, watched for its death
        try:
            transport.consume_batch(
                "writer", lambda d: crashing.handle_batch("writer", d), prefetch=10, stop=stop
            )
        except Crash:
            crashed.set()

    event.listen(factory, "before_commit", die)
    try:
        thread = threading.Thread(target=consume)
        thread.start()
        assert crashed.wait(20.0)
        thread.join(5.0)
    finally:
        event.remove(factory, "before_commit", die)
    assert commits == [] and written(db_url, dc) == {}

    worker = Worker(transport, writer_service(db_url), prefetch=10)
    worker.start()
    try:
        wait_for(lambda: worker.handled == MOVIES)
    finally:
        worker.stop()
    assert written(db_url, dc) == expected(range(MOVIES))
    assert list_dead(transport, "writer") == []
