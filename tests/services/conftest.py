"""Fixtures of the service tests: a database on each backend."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from cryolive.db import make_engine, session_factory, upgrade


@pytest.fixture(params=["sqlite", "mariadb"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    else:
        server_url = str(request.getfixturevalue("mariadb_server_url"))
        name = f"cryolive_watch_{uuid.uuid4().hex[:10]}"
        server = sa.create_engine(server_url)
        with server.begin() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE `{name}`")
        url = f"{server_url}/{name}"
    engine = make_engine(url)
    upgrade(engine)
    yield session_factory(engine)
    engine.dispose()
    if request.param == "mariadb":
        with server.begin() as connection:
            connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        server.dispose()
