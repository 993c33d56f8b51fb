"""Every database test runs on SQLite and on MariaDB (required in CI).

Each backend's database is built once per test session with ``cryolive.db.upgrade``; each test
gets a session inside a transaction that is rolled back afterwards (``db``), or the URL of the
database for tests that must commit (``db_url``; they use unique names so they never collide).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from cryolive.db import make_engine, upgrade
from cryolive.db.repo import collections, visits


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("db") / "cryolive.sqlite"
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def mariadb_url(mariadb_server_url: str) -> Iterator[str]:
    name = f"cryolive_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    server = sa.create_engine(mariadb_server_url, pool_pre_ping=True)
    with server.begin() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE `{name}`")
    url = f"{mariadb_server_url}/{name}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with server.begin() as connection:
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    server.dispose()


ISPYB_SCRIPTS = ("tables.sql", "lookups.sql", "data.sql", "routines.sql")


@pytest.fixture(scope="session")
def ispyb_database_dir(need_service: Callable[[str, str], None]) -> Path:
    """Diamond's published ISPyB schema (shared data, at <repo>/../shared/data/ispyb-database)."""
    folder = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ispyb-database"
    if not all((folder / name).is_file() for name in ISPYB_SCRIPTS):
        need_service("the published ISPyB schema", f"not at {folder}")
    return folder


@pytest.fixture(scope="session")
def build_real_ispyb(
    mariadb_server_url: str, ispyb_database_dir: Path, need_service: Callable[[str, str], None]
) -> Iterator[Callable[[], str]]:
    """Builds a MariaDB database as a facility builds its ISPyB (tables, lookups, sample data,
    routines from the published schema, about 2 s each); all are dropped when the session ends."""
    client = shutil.which("mariadb") or shutil.which("mysql")
    if client is None:
        need_service("the mariadb client", "neither mariadb nor mysql is on PATH")
    url = sa.make_url(mariadb_server_url)
    server = sa.create_engine(mariadb_server_url, pool_pre_ping=True)
    built: list[str] = []

    def build() -> str:
        name = f"cryolive_test_ispyb_real_{os.getpid()}_{len(built)}"
        built.append(name)
        with server.begin() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
            connection.exec_driver_sql(f"CREATE DATABASE `{name}`")
            connection.exec_driver_sql("SET GLOBAL log_bin_trust_function_creators = ON")
        command = [
            str(client),
            f"--host={url.host or '127.0.0.1'}",
            f"--port={url.port or 3306}",
            f"--user={url.username or 'root'}",
            name,
        ]
        environment = {**os.environ, "MYSQL_PWD": url.password or ""}
        for script in ISPYB_SCRIPTS:
            with (ispyb_database_dir / script).open("rb") as stream:
                subprocess.run(command, stdin=stream, env=environment, check=True, timeout=300)
        return f"{mariadb_server_url}/{name}"

    try:
        yield build
    finally:
        with server.begin() as connection:
            for name in built:
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        server.dispose()


@pytest.fixture
def real_ispyb_url(build_real_ispyb: Callable[[], str]) -> str:
    """A facility's ISPyB as published, which cryolive has not touched (a new one per test)."""
    return build_real_ispyb()


@pytest.fixture(scope="session")
def real_ispyb_upgraded_url(build_real_ispyb: Callable[[], str]) -> str:
    """A facility's ISPyB as published, after ``cryolive db upgrade`` (one per session)."""
    url = build_real_ispyb()
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "mariadb"])
def db_url(request: pytest.FixtureRequest) -> str:
    """URL of an upgraded database on each backend."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def db_engine(db_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def db(db_engine: sa.Engine) -> Iterator[Session]:
    """A session whose work is rolled back when the test ends."""
    with db_engine.connect() as connection:
        transaction = connection.begin()
        session = Session(bind=connection, join_transaction_mode="create_savepoint")
        try:
            yield session
        finally:
            session.close()
            transaction.rollback()


@pytest.fixture
def unique() -> str:
    """A short unique token, for names in tests that commit."""
    return uuid.uuid4().hex[:8]


@pytest.fixture(params=["sqlite", "mariadb"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a new, empty database on each backend, dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite'}"
        return
    server_url = str(request.getfixturevalue("mariadb_server_url"))
    name = f"cryolive_empty_{uuid.uuid4().hex[:10]}"
    server = sa.create_engine(server_url, pool_pre_ping=True)
    with server.begin() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE `{name}`")
    try:
        yield f"{server_url}/{name}"
    finally:
        with server.begin() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        server.dispose()


@dataclass(frozen=True)
class Collection:
    """A visit with one data collection and a program per stage, for result tests."""

    session_id: int
    data_collection_id: int
    motion_program_id: int
    ctf_program_id: int
    ice_program_id: int


def make_collection(session: Session, *, visit: str) -> Collection:
    session_id = visits.ensure_visit(session, visit=visit, microscope="m02")
    _, dc_id = collections.register_data_collection(
        session,
        spec=collections.DataCollectionSpec(
            session_id=session_id,
            image_directory=f"/dls/m02/data/2026/{visit}/raw",
            file_template="GridSquare_*/Data/*_fractions.tiff",
            voltage_kv=300,
            pixel_size_a=1.056,
        ),
    )
    programs = [
        collections.register_processing_job(
            session,
            data_collection_id=dc_id,
            recipe=recipe,
            request_key="auto",
            parameters={"stage": recipe},
        )[1]
        for recipe in ("motioncorr", "ctf", "ice")
    ]
    return Collection(session_id, dc_id, *programs)


@pytest.fixture
def collection(db: Session, unique: str) -> Collection:
    return make_collection(db, visit=f"bi{int(unique, 16) % 10**8}-1")


@pytest.fixture
def collection_maker() -> object:
    """:func:`make_collection`, for tests that commit in their own sessions."""
    return make_collection
