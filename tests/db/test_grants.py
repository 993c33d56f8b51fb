"""Least privilege: the read-only account cannot write; the writer only the pipeline's tables."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from ispyb.sqlalchemy import BLSession, DataCollection, Movie, Person
from sqlalchemy.orm import Session

from cryolive.db import Account, grant_accounts, make_engine
from cryolive.db.repo import collections, results, visits
from cryolive.records import MovieRecord, MovieRef


def _refused(engine: sa.Engine, model: type, values: dict[str, object]) -> str:
    with pytest.raises(sa.exc.DBAPIError) as caught, engine.begin() as connection:
        connection.execute(sa.insert(model), values)
    return str(caught.value.orig)


def test_mariadb_reader_cannot_write_and_writer_only_pipeline_tables(mariadb_url: str) -> None:
    admin = make_engine(mariadb_url)
    tag = uuid.uuid4().hex[:8]
    writer = Account(f"clw_{tag}", "writer-password-1", "%")
    reader = Account(f"clr_{tag}", "reader-password-1", "%")
    grant_accounts(admin, writer=writer, reader=reader)
    url = admin.url
    try:
        as_reader = make_engine(
            url.set(username=reader.name, password=reader.password).render_as_string(False)
        )
        as_writer = make_engine(
            url.set(username=writer.name, password=writer.password).render_as_string(False)
        )
        with as_reader.connect() as connection:  # the reader reads
            connection.execute(sa.select(sa.func.count()).select_from(Movie)).scalar_one()
        assert "denied" in _refused(as_reader, Movie, {"movieFullPath": "/x.tiff"})
        assert "denied" in _refused(as_writer, Person, {"login": f"intruder{tag}"})
        with as_writer.connect() as connection:  # the writer writes pipeline results
            transaction = connection.begin()
            connection.execute(sa.insert(Movie), {"movieFullPath": f"/{tag}.tiff"})
            written = connection.execute(
                sa.select(sa.func.count())
                .select_from(Movie)
                .where(Movie.movieFullPath == f"/{tag}.tiff")
            ).scalar_one()
            transaction.rollback()
        assert written == 1
    finally:
        as_reader.dispose()
        as_writer.dispose()
        with admin.begin() as connection:
            for account in (writer, reader):
                connection.exec_driver_sql(f"DROP USER IF EXISTS {account.sql()}")
        admin.dispose()


def test_sqlite_reader_opens_the_file_read_only(sqlite_url: str) -> None:
    """SQLite has no accounts: the web's reader engine opens the file read-only."""
    reader = make_engine(sqlite_url, writer=False)
    with Session(reader) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Movie)) is not None
    assert "readonly" in _refused(reader, Movie, {"movieFullPath": "/x.tiff"}).replace("-", "")
    reader.dispose()


def test_accounts_refuse_weak_or_odd_names() -> None:
    with pytest.raises(ValueError, match="account name"):
        Account("bad name'; DROP", "long-enough-password")
    with pytest.raises(ValueError, match="password"):
        Account("cryolive_writer", "short")


def test_grants_refuse_sqlite() -> None:
    engine = make_engine("sqlite://")
    with pytest.raises(ValueError, match="MariaDB only"):
        grant_accounts(
            engine,
            writer=Account("w", "long-enough-password"),
            reader=Account("r", "long-enough-password"),
        )


def test_on_a_facility_ispyb_the_writer_writes_what_the_pipeline_writes_and_no_more(
    real_ispyb_upgraded_url: str,
) -> None:
    """Through the roles (like ISPyB's ispyb_processing and ispyb_web): the writer registers a
    data collection, a run, movies and a message; it cannot add a visit or a person; the
    reader reads and cannot write."""
    admin = make_engine(real_ispyb_upgraded_url)
    tag = uuid.uuid4().hex[:8]
    writer = Account(f"clw_{tag}", "writer-password-1", "%")
    reader = Account(f"clr_{tag}", "reader-password-1", "%")
    with Session(admin) as session, session.begin():  # the administrator's part: the visit
        session_id = visits.ensure_visit(session, visit=f"cm{int(tag, 16) % 10**6}-1")
    grant_accounts(admin, writer=writer, reader=reader)
    url = admin.url
    as_writer = make_engine(
        url.set(username=writer.name, password=writer.password).render_as_string(False)
    )
    as_reader = make_engine(
        url.set(username=reader.name, password=reader.password).render_as_string(False),
        writer=False,
    )
    try:
        with Session(as_writer) as session, session.begin():
            _, dc_id = collections.register_data_collection(
                session,
                spec=collections.DataCollectionSpec(
                    session_id=session_id, image_directory=f"/dls/m02/data/{tag}/raw"
                ),
            )
            _, program_id = collections.register_processing_job(
                session, data_collection_id=dc_id, recipe="spa", request_key="auto", parameters={}
            )
            results.write_movies(
                session,
                records=[
                    MovieRecord(movie=MovieRef(data_collection_id=dc_id, movie_full_path=f"/{tag}"))
                ],
            )
            collections.add_program_message(
                session, auto_proc_program_id=program_id, severity="INFO", message="started"
            )
        assert "denied" in _refused(as_writer, Person, {"login": f"intruder{tag}"})
        assert "denied" in _refused(as_writer, BLSession, {"proposalId": 1, "visit_number": 99})
        with Session(as_reader) as session:
            assert session.get(DataCollection, dc_id) is not None
        assert "denied" in _refused(as_reader, Movie, {"movieFullPath": "/x.tiff"})
    finally:
        as_reader.dispose()
        as_writer.dispose()
        with admin.begin() as connection:
            for account in (writer, reader):
                connection.exec_driver_sql(f"DROP USER IF EXISTS {account.sql()}")
        admin.dispose()


def test_grants_need_cryolive_tables(real_ispyb_url: str) -> None:
    engine = make_engine(real_ispyb_url)  # a facility's ISPyB before `cryolive db upgrade`
    with pytest.raises(ValueError, match="run `cryolive db upgrade` first"):
        grant_accounts(
            engine,
            writer=Account("w_none", "long-enough-password"),
            reader=Account("r_none", "long-enough-password"),
        )
    engine.dispose()
