"""Small SQL helpers of the series reads: epoch seconds computed by the database, rows read
through the driver's own cursor."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement


class EpochSeconds(FunctionElement[int]):
    """Seconds since 1970-01-01 of a naive DATETIME read as UTC, computed by the database:
    50,000 datetimes parsed in Python cost more than the rest of the series put together."""

    type = sa.Integer()
    inherit_cache = True


@compiles(EpochSeconds)
def _epoch_default(element: EpochSeconds, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', {column})"


@compiles(EpochSeconds, "sqlite")
def _epoch_sqlite(element: EpochSeconds, compiler: Any, **kw: Any) -> str:
    return f"CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


def raw_rows(session: Session, query: Any) -> list[tuple[Any, ...]]:
    """The rows of a Core query as the driver's own tuples (its C ``fetchall``), without
    SQLAlchemy's per-row result objects: every column read here is a number the driver
    already converts, so no type processing is skipped."""
    connection = session.connection()
    compiled = query.compile(
        dialect=connection.dialect, compile_kwargs={"render_postcompile": True}
    )
    params = compiled.construct_params()
    bound: Any = params
    if compiled.positional:
        bound = tuple(params[name] for name in compiled.positiontup or ())
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(str(compiled), bound)
        return list(cursor.fetchall())
    finally:
        cursor.close()
