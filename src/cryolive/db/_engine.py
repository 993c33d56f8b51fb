"""Engines and sessions for SQLite (embedded) and MariaDB (facility)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from cryolive.db import _live

SQLITE_BUSY_TIMEOUT_MS = 30_000


def _configure_sqlite(engine: sa.Engine, *, writer: bool) -> None:
    """WAL, foreign keys, a busy timeout and, for writers, ``BEGIN IMMEDIATE``.

    ``BEGIN IMMEDIATE`` takes SQLite's write lock at the start of a transaction, so two
    processes that upsert the same row queue behind each other instead of one failing with
    ``database is locked`` when it upgrades a read snapshot to a write.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if writer:
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


def make_engine(url: str, *, writer: bool = True, echo: bool = False) -> sa.Engine:
    """An engine for ``url``.

    Parameters
    ----------
    url
        SQLAlchemy URL: ``sqlite:///path`` or ``mysql+pymysql://user:password@host/db``.
    writer
        Whether this engine writes. On SQLite a writer takes the write lock when a transaction
        begins, and a reader opens the file read-only (SQLite has no accounts: this is its least
        privilege). On MariaDB every engine reads committed data (``READ COMMITTED``), which the
        idempotent upserts need to see a row another process has just committed; read-only
        there is the account's business (:mod:`cryolive.db.grants`).
    """
    _live.install()  # ORM loads of ISPyB rows skip the columns the database lacks
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        if writer or not path or path == ":memory:":
            engine = sa.create_engine(url, echo=echo, connect_args={"timeout": 30})
        else:
            uri = f"file:{Path(path).resolve()}?mode=ro"
            engine = sa.create_engine(
                "sqlite://",
                echo=echo,
                creator=lambda: sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False),
                # a pool of checked-out connections: "sqlite://" alone would get the in-memory
                # database's per-thread pool, which closes connections other threads still use
                poolclass=sa.pool.QueuePool,
            )
        _configure_sqlite(engine, writer=writer)
        return engine
    if parsed.get_backend_name() in {"mysql", "mariadb"}:
        return sa.create_engine(
            url,
            echo=echo,
            pool_pre_ping=True,
            pool_recycle=3600,
            isolation_level="READ COMMITTED",
        )
    raise ValueError(f"url: unsupported database {parsed.get_backend_name()!r} (SQLite or MariaDB)")


def session_factory(engine: sa.Engine) -> sessionmaker[Session]:
    """Sessions that do not expire objects on commit (results are read after writing)."""
    return sessionmaker(engine, expire_on_commit=False)
