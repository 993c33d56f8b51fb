"""The columns the database really has, so cryolive uses only those.

The ``ispyb`` package's models can be ahead of a facility's ISPyB (``AutoProcProgram.jobUuid``
is in the models, not in the published schema 5.x). cryolive reads the live schema once per
engine (one ``information_schema`` query on MariaDB, ``PRAGMA table_info`` on SQLite) and then:

- inserts and updates of ISPyB rows send only the columns that exist (:func:`restrict`);
- ORM loads of ISPyB entities defer the columns that do not exist (:func:`install`), so
  ``session.get(AutoProcProgram, …)`` or ``select(Movie)`` never name a missing column.

A table the database does not have is left alone (the statement fails as it would anyway).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, defer

from cryolive.db.ispyb_compat import ispyb_metadata


@dataclass(frozen=True)
class LiveSchema:
    """Column names by table name, as the database has them."""

    columns: Mapping[str, frozenset[str]]

    def missing_columns(self, table: sa.Table) -> tuple[str, ...]:
        """Columns of ``table`` (as the models define it) that the database lacks."""
        present = self.columns.get(table.name)
        if present is None:
            return ()
        return tuple(c.name for c in table.columns if c.name not in present)

    def restrict(self, table: sa.Table, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` without the columns ``table`` lacks in the database."""
        present = self.columns.get(table.name)
        if present is None:
            return dict(values)
        return {name: value for name, value in values.items() if name in present}


_SCHEMAS: weakref.WeakKeyDictionary[sa.Engine, LiveSchema] = weakref.WeakKeyDictionary()


def reflect(connection: sa.Connection) -> LiveSchema:
    """Read the columns of every table behind ``connection``."""
    found: dict[str, set[str]] = {}
    if connection.dialect.name == "mysql":
        rows = connection.execute(
            sa.text(
                "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS "
                "WHERE TABLE_SCHEMA = DATABASE()"
            )
        )
        for table_name, column_name in rows:
            found.setdefault(str(table_name), set()).add(str(column_name))
    else:
        inspector = sa.inspect(connection)
        wanted = set(ispyb_metadata().tables)
        for table_name in inspector.get_table_names():
            if table_name in wanted:
                found[table_name] = {c["name"] for c in inspector.get_columns(table_name)}
    return LiveSchema({name: frozenset(columns) for name, columns in found.items()})


def live_schema(connection: sa.Connection) -> LiveSchema:
    """The live schema of ``connection``'s database, read once per engine."""
    engine = connection.engine
    schema = _SCHEMAS.get(engine)
    if schema is None:
        schema = _SCHEMAS[engine] = reflect(connection)
    return schema


def forget(engine: sa.Engine) -> None:
    """Drop what is known of ``engine``'s schema (after ``db upgrade`` changed it)."""
    _SCHEMAS.pop(engine, None)


def restrict(session: Session, table: sa.Table, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` for an insert or update of ``table``, without the columns it lacks."""
    return restrict_many(session, table, [values])[0]


def restrict_many(
    session: Session, table: sa.Table, rows: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """:func:`restrict` for a batch of rows (the schema is looked up once)."""
    if table.name not in ispyb_metadata().tables:
        return [dict(row) for row in rows]  # cryolive's own tables: as the migrations made them
    schema = live_schema(session.connection())
    return [schema.restrict(table, row) for row in rows]


def _loaded_entities(statement: Any) -> list[sa.orm.Mapper[Any]]:
    """The mappers whose whole entity ``statement`` loads (``select(Movie)``, not
    ``select(Movie.movieId)``: a loader option on the latter is an error)."""
    mappers = []
    for description in getattr(statement, "column_descriptions", ()):
        entity, expression = description.get("entity"), description.get("expr")
        if entity is not None and expression is entity:
            mapper = sa.inspect(entity, raiseerr=False)
            if isinstance(mapper, sa.orm.Mapper):
                mappers.append(mapper)
    return mappers


def _defer_missing(state: ORMExecuteState) -> None:
    if not state.is_select or state.is_column_load:
        return
    ispyb_tables = ispyb_metadata().tables
    mappers = [
        m
        for m in _loaded_entities(state.statement)
        if isinstance(m.local_table, sa.Table) and m.local_table.name in ispyb_tables
    ]
    if not mappers:
        return
    schema = live_schema(state.session.connection())
    options = []
    for mapper in mappers:
        table = mapper.local_table
        assert isinstance(table, sa.Table)
        for name in schema.missing_columns(table):
            attribute = mapper.get_property_by_column(table.c[name])
            options.append(defer(getattr(mapper.class_, attribute.key)))
    if options:
        state.statement = state.statement.options(*options)


def install() -> None:
    """Make every ORM session defer the ISPyB columns its database lacks (idempotent)."""
    if not event.contains(Session, "do_orm_execute", _defer_missing):
        event.listen(Session, "do_orm_execute", _defer_missing)
