"""Two writers racing: another ISPyB client (the ``ispyb`` package's models, as Murfey writes)
and cryolive register the same data collection and movies at the same instant, on MariaDB
(cryolive's own and the published schema, which has no unique key for either): one row each
afterwards.

The published schema leaves the protocol to the writers: each takes a locking read of the
parent row (the visit for a data collection, the data collection for a movie) before it looks
for the row, so the second one waits for the first one's commit and then finds its row.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from functools import partial

import pytest
import sqlalchemy as sa
from ispyb.sqlalchemy import BLSession, DataCollection, DataCollectionGroup, Movie
from sqlalchemy.orm import Session

from cryolive.db import make_engine
from cryolive.db.repo import collections, results, visits
from cryolive.records import MovieRecord, MovieRef

ROUNDS = 4  # each writer first twice, in both phases
MOVIES = 4


def _other_client(engine: sa.Engine, session_id: int, directory: str, paths: list[str]) -> None:
    """Find or create as a careful client does: lock the parent, look, then insert; it holds
    its new rows a moment before committing, to give a racing writer every chance to miss
    them."""
    with Session(engine) as session, session.begin():
        session.execute(
            sa.select(BLSession.sessionId)
            .where(BLSession.sessionId == session_id)
            .with_for_update()
        )
        dc = session.scalars(
            sa.select(DataCollection).where(
                session_id == DataCollection.SESSIONID,
                DataCollection.imageDirectory.in_([directory, directory + "/"]),
            )
        ).first()
        if dc is None:
            group = DataCollectionGroup(
                sessionId=session_id, experimentTypeId=37, experimentType="EM"
            )
            session.add(group)
            session.flush()
            dc = DataCollection(
                dataCollectionGroupId=group.dataCollectionGroupId,
                SESSIONID=session_id,
                imageDirectory=directory,
                voltage=300,
            )
            session.add(dc)
            session.flush()
        session.execute(
            sa.select(DataCollection.dataCollectionId)
            .where(DataCollection.dataCollectionId == dc.dataCollectionId)
            .with_for_update()
        )
        for number, path in enumerate(paths, start=1):
            found = session.scalars(
                sa.select(Movie.movieId).where(
                    Movie.dataCollectionId == dc.dataCollectionId, Movie.movieFullPath == path
                )
            ).first()
            if found is None:
                session.add(
                    Movie(
                        dataCollectionId=dc.dataCollectionId, movieFullPath=path, movieNumber=number
                    )
                )
        session.flush()
        time.sleep(0.2)


def _cryolive(
    engine: sa.Engine, session_id: int, directory: str, paths: list[str], dc_id: int = 0
) -> None:
    """Registers the data collection (unless given) and the movies, as the watcher does."""
    with Session(engine) as session, session.begin():
        if not dc_id:
            _, dc_id = collections.register_data_collection(
                session,
                spec=collections.DataCollectionSpec(
                    session_id=session_id, image_directory=directory + "/", voltage_kv=300
                ),
            )
        results.write_movies(
            session,
            records=[
                MovieRecord(
                    movie=MovieRef(data_collection_id=dc_id, movie_full_path=p), movie_number=n
                )
                for n, p in enumerate(paths, start=1)
            ],
        )


def _race(*writers: Callable[[], None]) -> None:
    barrier = threading.Barrier(len(writers))
    errors: list[BaseException] = []

    def run(writer: Callable[[], None]) -> None:
        barrier.wait()
        try:
            writer()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors


def _counts(engine: sa.Engine, session_id: int) -> tuple[int, int, int, int]:
    with Session(engine) as session:
        groups = session.scalar(
            sa.select(sa.func.count())
            .select_from(DataCollectionGroup)
            .where(DataCollectionGroup.sessionId == session_id)
        )
        dcs = session.scalar(
            sa.select(sa.func.count())
            .select_from(DataCollection)
            .where(session_id == DataCollection.SESSIONID)
        )
        movies = session.scalar(
            sa.select(sa.func.count())
            .select_from(Movie)
            .join(DataCollection, DataCollection.dataCollectionId == Movie.dataCollectionId)
            .where(session_id == DataCollection.SESSIONID)
        )
        paths = session.scalar(
            sa.select(sa.func.count(sa.distinct(Movie.movieFullPath)))
            .join(DataCollection, DataCollection.dataCollectionId == Movie.dataCollectionId)
            .where(session_id == DataCollection.SESSIONID)
        )
    return int(groups or 0), int(dcs or 0), int(movies or 0), int(paths or 0)


def _rounds(url: str) -> None:
    engine = make_engine(url)
    try:
        for round_ in range(ROUNDS):
            with Session(engine) as session, session.begin():
                visit = f"bi{uuid.uuid4().int % 10**8}-1"
                session_id = visits.ensure_visit(session, visit=visit, microscope="m02")
            directory = f"/dls/m02/data/2026/{visit}/raw"
            paths = [f"{directory}/FoilHole_{i}_fractions.tiff" for i in range(MOVIES)]
            writers = [
                partial(_other_client, engine, session_id, directory, paths),
                partial(_cryolive, engine, session_id, directory, paths),
            ]
            _race(*(writers if round_ % 2 else writers[::-1]))
            assert _counts(engine, session_id) == (1, 1, MOVIES, MOVIES), f"round {round_}"
            # the data collection exists now: both add the same new movies at once
            with Session(engine) as session:
                dc_id = session.scalars(
                    sa.select(DataCollection.dataCollectionId).where(
                        session_id == DataCollection.SESSIONID
                    )
                ).one()
            more = [f"{directory}/FoilHole_{i}_fractions.tiff" for i in range(MOVIES, 2 * MOVIES)]
            writers = [
                partial(_other_client, engine, session_id, directory, more),
                partial(_cryolive, engine, session_id, directory, more, dc_id),
            ]
            _race(*(writers if round_ % 2 else writers[::-1]))
            expected = (1, 1, 2 * MOVIES, 2 * MOVIES)
            assert _counts(engine, session_id) == expected, f"round {round_}"
    finally:
        engine.dispose()


@pytest.mark.parametrize("schema", ["cryolive", "published"])
def test_two_writers_racing_leave_one_row_each(schema: str, request: pytest.FixtureRequest) -> None:
    fixture = "mariadb_url" if schema == "cryolive" else "real_ispyb_upgraded_url"
    _rounds(str(request.getfixturevalue(fixture)))
