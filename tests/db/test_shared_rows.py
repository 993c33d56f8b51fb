"""Rows shared with other ISPyB clients: whoever writes a data collection or a movie first,
there is one row afterwards.

The other client here writes as Murfey does, with the ``ispyb`` package's models directly: a
DataCollectionGroup, a DataCollection whose ``imageDirectory`` has no trailing slash, Movies.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from ispyb.sqlalchemy import DataCollection, DataCollectionGroup, Movie
from sqlalchemy.orm import Session

from cryolive.db import make_engine
from cryolive.db.repo import collections, results, visits
from cryolive.records import MovieRecord, MovieRef


def _visit() -> str:
    return f"bi{uuid.uuid4().int % 10**8}-1"


def _other_client_registers(
    session: Session, *, session_id: int, directory: str, paths: list[str]
) -> tuple[int, list[int]]:
    """Find or create the data collection and movies as another client would; their ids."""
    dc = session.scalars(
        sa.select(DataCollection).where(
            session_id == DataCollection.SESSIONID,
            DataCollection.imageDirectory.in_([directory, directory + "/"]),
        )
    ).first()
    if dc is None:
        group = DataCollectionGroup(sessionId=session_id, experimentTypeId=37, experimentType="EM")
        session.add(group)
        session.flush()
        dc = DataCollection(
            dataCollectionGroupId=group.dataCollectionGroupId,
            SESSIONID=session_id,
            imageDirectory=directory,
            fileTemplate=None,
            voltage=300,
        )
        session.add(dc)
        session.flush()
    movie_ids = []
    for number, path in enumerate(paths, start=1):
        movie = session.scalars(
            sa.select(Movie).where(
                Movie.dataCollectionId == dc.dataCollectionId, Movie.movieFullPath == path
            )
        ).first()
        if movie is None:
            movie = Movie(
                dataCollectionId=dc.dataCollectionId, movieFullPath=path, movieNumber=number
            )
            session.add(movie)
            session.flush()
        movie_ids.append(int(movie.movieId))
    return int(dc.dataCollectionId), movie_ids


def _cryolive_registers(
    session: Session, *, session_id: int, directory: str, paths: list[str]
) -> tuple[int, list[int]]:
    _, dc_id = collections.register_data_collection(
        session,
        spec=collections.DataCollectionSpec(
            session_id=session_id,
            image_directory=directory + "/",
            file_template="GridSquare_*/Data/*_fractions.tiff",
            voltage_kv=300,
            pixel_size_a=1.06,
        ),
    )
    movie_ids = results.write_movies(
        session,
        records=[
            MovieRecord(
                movie=MovieRef(data_collection_id=dc_id, movie_full_path=path), number_of_frames=40
            )
            for path in paths
        ],
    )
    return dc_id, movie_ids


def _counts(session: Session, session_id: int) -> tuple[int, int, int]:
    dcs = sa.select(DataCollection.dataCollectionId).where(session_id == DataCollection.SESSIONID)
    return (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(DataCollectionGroup)
            .where(DataCollectionGroup.sessionId == session_id)
        )
        or 0,
        session.scalar(sa.select(sa.func.count()).select_from(dcs.subquery())) or 0,
        session.scalar(
            sa.select(sa.func.count()).select_from(Movie).where(Movie.dataCollectionId.in_(dcs))
        )
        or 0,
    )


def _other_client_first(session: Session) -> None:
    session_id = visits.ensure_visit(session, visit=_visit(), microscope="m02")
    directory = f"/dls/m02/data/2026/v{session_id}/raw"
    paths = [f"{directory}/GridSquare_1/Data/FoilHole_{i}_fractions.tiff" for i in range(3)]
    theirs, their_movies = _other_client_registers(
        session, session_id=session_id, directory=directory, paths=paths[:2]
    )
    ours, our_movies = _cryolive_registers(
        session, session_id=session_id, directory=directory, paths=paths
    )
    assert ours == theirs
    assert our_movies[:2] == their_movies
    assert _counts(session, session_id) == (1, 1, 3)
    # Adopted rows keep the key the other client wrote; cryolive fills in what it knows.
    dc = session.get(DataCollection, ours)
    assert dc is not None
    session.refresh(dc)
    assert dc.imageDirectory == directory
    assert dc.fileTemplate == "GridSquare_*/Data/*_fractions.tiff"
    frames = session.scalars(
        sa.select(Movie.numberOfFrames).where(Movie.movieId.in_(their_movies))
    ).all()
    assert frames == [40, 40]
    # Written again (a redelivered message): still one row each, now found by cryolive's key.
    assert _cryolive_registers(session, session_id=session_id, directory=directory, paths=paths)
    assert _counts(session, session_id) == (1, 1, 3)


def _cryolive_first(session: Session) -> None:
    session_id = visits.ensure_visit(session, visit=_visit(), microscope="m02")
    directory = f"/dls/m02/data/2026/v{session_id}/raw"
    paths = [f"{directory}/GridSquare_1/Data/FoilHole_{i}_fractions.tiff" for i in range(3)]
    ours, our_movies = _cryolive_registers(
        session, session_id=session_id, directory=directory, paths=paths[:2]
    )
    theirs, their_movies = _other_client_registers(
        session, session_id=session_id, directory=directory, paths=paths
    )
    assert theirs == ours and their_movies[:2] == our_movies
    assert _counts(session, session_id) == (1, 1, 3)
    # ... and cryolive, seeing the movie the other client added, takes it too.
    assert _cryolive_registers(
        session, session_id=session_id, directory=directory, paths=paths
    ) == (ours, their_movies)
    assert _counts(session, session_id) == (1, 1, 3)


def test_rows_another_client_wrote_first_are_reused(db: Session) -> None:
    _other_client_first(db)


def test_another_client_finds_the_rows_cryolive_wrote(db: Session) -> None:
    _cryolive_first(db)


def test_paths_are_compared_exactly(db: Session) -> None:
    """A movie whose path differs only in case is another movie (MariaDB's collation would
    call them equal)."""
    session_id = visits.ensure_visit(db, visit=_visit(), microscope="m02")
    directory = f"/dls/m02/data/2026/v{session_id}/raw"
    _other_client_registers(
        db, session_id=session_id, directory=directory, paths=[f"{directory}/Movie_1.tiff"]
    )
    _cryolive_registers(
        db, session_id=session_id, directory=directory, paths=[f"{directory}/movie_1.tiff"]
    )
    assert _counts(db, session_id) == (1, 1, 2)


def test_a_folder_recorded_with_other_optics_is_another_data_collection(db: Session) -> None:
    session_id = visits.ensure_visit(db, visit=_visit(), microscope="m02")
    directory = f"/dls/m02/data/2026/v{session_id}/raw"
    theirs, _ = _other_client_registers(db, session_id=session_id, directory=directory, paths=[])
    db.execute(
        sa.update(DataCollection)
        .where(DataCollection.dataCollectionId == theirs)
        .values(voltage=200)
    )
    ours, _ = _cryolive_registers(db, session_id=session_id, directory=directory, paths=[])
    assert ours != theirs


def test_shared_rows_on_a_facility_ispyb(real_ispyb_upgraded_url: str) -> None:
    """Both orders on the published schema, each side committing as a separate client."""
    engine = make_engine(real_ispyb_upgraded_url)
    for scenario in (_other_client_first, _cryolive_first):
        with Session(engine) as session, session.begin():
            scenario(session)
    engine.dispose()
