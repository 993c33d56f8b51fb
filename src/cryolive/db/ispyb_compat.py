"""Make the ``ispyb`` package's MariaDB-generated models build on SQLite.

The models (``ispyb.sqlalchemy``, schema 5.2.0) are generated from MariaDB. Three things in them
do not work on SQLite, and this module rewrites a *copy* of their metadata for SQLite DDL:

- MySQL-only column types (``TINYINT``, ``MEDIUMINT``, ``LONGBLOB``, ``LONGTEXT`` …) become the
  nearest portable type, and integer primary keys become plain ``INTEGER`` so SQLite's rowid
  gives them auto-increment;
- MariaDB server defaults (``current_timestamp()``, ``… ON UPDATE current_timestamp()``,
  ``current_user()``) become ``CURRENT_TIMESTAMP`` or nothing; computed columns are dropped
  to plain columns;
- index names, which MariaDB scopes per table but SQLite per database, get their table's name.

The ORM classes keep mapping to the original tables; only DDL uses the copy, so the same code
reads and writes both databases. ``ON UPDATE`` semantics are MariaDB's alone: code that updates
a row with such a column (``Movie.createdTimeStamp``) keeps the column's value explicitly
(:func:`on_update_columns`).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import sqlalchemy as sa
from ispyb.sqlalchemy import Base
from sqlalchemy.dialects import mysql

__schema_version__: str = __import__("ispyb.sqlalchemy", fromlist=["x"]).__schema_version__

_TEXT_TYPES = (mysql.LONGTEXT, mysql.MEDIUMTEXT, mysql.TINYTEXT)
_BLOB_TYPES = (mysql.LONGBLOB, mysql.MEDIUMBLOB, mysql.TINYBLOB)


def ispyb_metadata() -> sa.MetaData:
    """The ISPyB tables as the ``ispyb`` package defines them (MariaDB)."""
    metadata: sa.MetaData = Base.metadata
    return metadata


def _portable_type(column: sa.Column[Any]) -> sa.types.TypeEngine[Any]:
    kind = column.type
    if isinstance(kind, sa.Integer) and not isinstance(kind, sa.Boolean):
        return sa.Integer()
    if isinstance(kind, _TEXT_TYPES):
        return sa.Text()
    if isinstance(kind, _BLOB_TYPES):
        return sa.LargeBinary()
    if isinstance(kind, mysql.VARCHAR):
        return sa.String(kind.length)
    if isinstance(kind, sa.Enum):
        return sa.String(max((len(v) for v in kind.enums), default=32))
    return kind


def _portable_default(column: sa.Column[Any]) -> sa.schema.DefaultClause | None:
    default = column.server_default
    if not isinstance(default, sa.DefaultClause):
        return None
    arg = default.arg
    text = arg.text if isinstance(arg, sa.TextClause) else str(arg)
    lowered = text.lower()
    if lowered.startswith("current_timestamp"):
        return sa.DefaultClause(sa.text("CURRENT_TIMESTAMP"))
    if "current_user" in lowered or "0000-00-00" in lowered:
        return None
    return default


@cache
def sqlite_metadata() -> sa.MetaData:
    """A copy of the ISPyB metadata whose DDL SQLite accepts (see the module's docstring)."""
    portable = sa.MetaData()
    for table in Base.metadata.sorted_tables:
        copy = table.to_metadata(portable)
        for column in copy.columns:
            column.type = _portable_type(column)
            column.server_default = _portable_default(column)
            column.server_onupdate = None
            column.computed = None
        for index in copy.indexes:
            index.name = f"{copy.name}__{index.name}"
    return portable


def metadata_for(dialect_name: str) -> sa.MetaData:
    """The ISPyB metadata to build tables from on ``dialect_name`` ('sqlite', 'mysql', …)."""
    return sqlite_metadata() if dialect_name == "sqlite" else ispyb_metadata()


@cache
def on_update_columns(table_name: str) -> tuple[str, ...]:
    """Columns MariaDB rewrites on every UPDATE (``ON UPDATE current_timestamp()``)."""
    table = Base.metadata.tables[table_name]
    found = []
    for column in table.columns:
        default = column.server_default
        if (
            isinstance(default, sa.DefaultClause)
            and "on update" in str(getattr(default.arg, "text", default.arg)).lower()
        ):
            found.append(column.name)
    return tuple(found)
