"""Idempotent upserts on natural keys, for ISPyB tables that have no unique key of their own.

A natural key is an ordered tuple of the values that identify a row (a movie: its data
collection and path; a data collection: its visit and raw folder). Rows that belong to a parent
and a program (a motion correction, a CTF fit) need no key of ours: see ``_children``.

A key's hash is stored once in ``cryolive_work_key`` with the row's id; its uniqueness is what
makes two writers of the same key (two processes, or a redelivered message) end with one row:
the second writer's key insert fails, its savepoint rolls back, and it updates the row the first
one wrote.

Everything works in batches: one ``SELECT … IN`` for the keys, one multi-row ``INSERT`` for the
new rows, one multi-row upsert for the rest. Functions never commit: the caller owns the
transaction.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import weakref
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.orm import Session

from cryolive.db._live import restrict, restrict_many
from cryolive.db.ispyb_compat import on_update_columns
from cryolive.db.models import WorkKey
from cryolive.db.repo._shared import Adopt

KeyParts = tuple[Hashable, ...]
_CHUNK = 500
_NEW_ROWS = "cryolive_new_rows"  # session.info: (transaction, ids by table) it inserted


def table_of(model: type[Any]) -> sa.Table:
    """The table behind an ORM model (the ``ispyb`` models map one table each)."""
    table = model.__table__
    if not isinstance(table, sa.Table):
        raise TypeError(f"model: {model!r} does not map a table")
    return table


_KEYS = table_of(WorkKey)


def key_hash(table_name: str, parts: KeyParts) -> bytes:
    """The stored form of a natural key: 128 bits of the SHA-256 of the table and the parts.

    The table is part of the hash, so one unique index serves every table; 128 bits keep the
    chance of two keys colliding negligible (about 1e-20 at a billion keys).
    """
    text = "\x1f".join([table_name, *map(str, parts)])  # unit separator: not in paths or ids
    return hashlib.sha256(text.encode()).digest()[:16]


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def lookup(
    session: Session,
    *,
    table: sa.Table,
    keys: Sequence[KeyParts],
    hashes: Mapping[bytes, KeyParts] | None = None,
) -> dict[KeyParts, int]:
    """Row ids of the natural keys that exist, by key (``hashes``: the keys' hashes, if known)."""
    if hashes is None:
        hashes = {key_hash(table.name, key): key for key in keys}
    found: dict[KeyParts, int] = {}
    for chunk in _chunks(list(hashes)):
        rows = session.execute(
            sa.select(_KEYS.c.natural_key, _KEYS.c.row_id).where(_KEYS.c.natural_key.in_(chunk))
        )
        for natural_key, row_id in rows:
            found[hashes[natural_key]] = int(row_id)
    return found


def require(
    session: Session,
    *,
    table: sa.Table,
    keys: Sequence[KeyParts],
    known: Mapping[Any, int] | None = None,
) -> dict[KeyParts, int]:
    """Like :func:`lookup`, but every key must exist (a parent written earlier).

    ``known`` holds ids the caller already has (parents it has just written): only the other
    keys are looked up.
    """
    known = known or {}
    found = dict(known)
    found |= lookup(session, table=table, keys=[key for key in keys if key not in known])
    missing = [key for key in keys if key not in found]
    if missing:
        raise LookupError(f"{table.name}: no row recorded for key {missing[0]!r}")
    return found


def insert_row(session: Session, *, table: sa.Table, values: Mapping[str, Any]) -> int:
    """Insert one row, sending only the columns the database's table has; its new id (the
    first primary-key column)."""
    result = session.execute(sa.insert(table).values(restrict(session, table, values)))
    primary_key = cast("sa.CursorResult[Any]", result).inserted_primary_key
    if primary_key is None:
        raise RuntimeError(f"{table.name}: the insert returned no primary key")
    return int(primary_key[0])


def upsert_many(
    session: Session,
    *,
    table: sa.Table,
    rows: Sequence[tuple[KeyParts, Mapping[str, Any]]],
    adopt: Adopt | None = None,
) -> list[int]:
    """Insert or update one row per natural key; return the row ids in the order given.

    ``rows`` pairs each natural key with the row's column values (ISPyB column names). A key
    that appears twice in ``rows`` is written once, with its last values. ``adopt`` finds rows
    of keys cryolive has not recorded that another ISPyB client wrote: those are reused (and
    their key recorded), not duplicated.
    """
    if not rows:
        return []
    try:
        with session.begin_nested():
            return _upsert_once(session, table=table, rows=rows, adopt=adopt)
    except sa.exc.IntegrityError:
        # Another writer recorded one of these keys after we looked: it now exists, so the
        # second attempt updates it.
        with session.begin_nested():
            return _upsert_once(session, table=table, rows=rows, adopt=adopt)


def upsert(
    session: Session,
    *,
    table: sa.Table,
    key: KeyParts,
    values: Mapping[str, Any],
    adopt: Adopt | None = None,
) -> int:
    """:func:`upsert_many` for one row."""
    return upsert_many(session, table=table, rows=[(key, values)], adopt=adopt)[0]


def _upsert_once(
    session: Session,
    *,
    table: sa.Table,
    rows: Sequence[tuple[KeyParts, Mapping[str, Any]]],
    adopt: Adopt | None,
) -> list[int]:
    latest: dict[KeyParts, Mapping[str, Any]] = {}
    for key, values in rows:
        latest[key] = values
    hash_of = {key: key_hash(table.name, key) for key in latest}
    ids = lookup(session, table=table, keys=list(latest), hashes={h: k for k, h in hash_of.items()})
    adopted: dict[KeyParts, int] = {}
    if adopt is not None and len(ids) < len(latest):
        adopted = adopt.find(session, [(k, v) for k, v in latest.items() if k not in ids])
        if adopted:
            _record_keys(session, [(hash_of[k], table.name, row) for k, row in adopted.items()])
            ids.update(adopted)
            changes = [(row, adopt.values_for_adopted(latest[k])) for k, row in adopted.items()]
            _update_many(session, table=table, rows=[c for c in changes if c[1]], in_place=True)

    new_keys = [key for key in latest if key not in ids]
    if new_keys:
        inserted = _insert_returning(session, table=table, rows=[latest[k] for k in new_keys])
        ids.update(zip(new_keys, inserted, strict=True))
        note_new_rows(session, table=table, ids=inserted)
        _record_keys(session, [(hash_of[k], table.name, ids[k]) for k in new_keys])

    new = set(new_keys)
    old_keys = [key for key in latest if key not in new and key not in adopted]
    if old_keys:
        _update_many(session, table=table, rows=[(ids[k], latest[k]) for k in old_keys])
    return [ids[key] for key, _ in rows]


def _transaction_notes(session: Session) -> dict[str, set[int]]:
    """Row ids noted during the session's current transaction, by name (a new transaction
    starts with none)."""
    transaction = session.get_transaction()
    found = session.info.get(_NEW_ROWS)
    if found is None or found[0] is not transaction:
        found = session.info[_NEW_ROWS] = (transaction, {})
    notes: dict[str, set[int]] = found[1]
    return notes


def note_new_rows(session: Session, *, table: sa.Table, ids: Iterable[int]) -> None:
    """Remember that this transaction inserted rows ``ids`` of ``table`` (see
    :func:`new_in_transaction`)."""
    _transaction_notes(session).setdefault(table.name, set()).update(ids)


def new_in_transaction(session: Session, *, table: sa.Table, ids: Iterable[int]) -> bool:
    """Whether the current transaction inserted every row ``ids`` of ``table`` itself.

    Such a row has no children but those this transaction gave it (no other transaction can
    see it) and is locked already (an inserted row is).
    """
    return set(ids) <= _transaction_notes(session).get(table.name, set())


def _record_keys(session: Session, rows: Sequence[tuple[bytes, str, int]]) -> None:
    """Insert (natural_key, table_name, row_id) rows straight through the driver.

    These narrow rows are half of what an upsert of new rows writes; sent as plain tuples they
    skip SQLAlchemy's per-row parameter processing (pymysql folds them into multi-row inserts).
    """
    connection = session.connection()
    marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    connection.exec_driver_sql(
        f"INSERT INTO {_KEYS.name} (natural_key, table_name, row_id) "
        f"VALUES ({marker}, {marker}, {marker})",
        list(rows),
    )


def _insert_returning(
    session: Session, *, table: sa.Table, rows: Sequence[Mapping[str, Any]]
) -> list[int]:
    """Insert ``rows``; their new primary keys, in the order of ``rows``.

    On MariaDB the rows go as one multi-row ``INSERT`` per chunk and its ids follow the first
    (:func:`_insert_block`), or, where InnoDB does not promise consecutive ids, come back
    through ``RETURNING`` (in parameter order), about twice as slow. SQLite
    cannot promise that order, so there the ids are chosen here, after the largest one: safe
    because a SQLite writer holds the database's write lock for its whole transaction
    (``BEGIN IMMEDIATE``), and much faster than one ``INSERT`` per row.
    """
    (pk,) = table.primary_key.columns
    rows = restrict_many(session, table, rows)  # only the columns the table has
    if session.get_bind().dialect.name == "sqlite":
        first = int(session.scalar(sa.select(sa.func.max(pk))) or 0) + 1
        ids = list(range(first, first + len(rows)))
        params = [{**row, pk.name: row_id} for row, row_id in zip(rows, ids, strict=True)]
        for positions in _group_by_columns(params).values():
            session.execute(sa.insert(table), [params[i] for i in positions])
        return ids
    step = _consecutive_step(session)
    statement = sa.insert(table).returning(pk, sort_by_parameter_order=True)
    ids = [0] * len(rows)
    for positions in _group_by_columns(rows).values():
        plain = step and pk.name not in rows[positions[0]] and _plain_values(rows, positions)
        for chunk in _chunks(positions):
            if plain:
                first = _insert_block(session, table=table, rows=[rows[i] for i in chunk])
                for offset, position in enumerate(chunk):
                    ids[position] = first + offset * step
                continue
            new_ids = session.scalars(statement, [dict(rows[i]) for i in chunk]).all()
            for position, row_id in zip(chunk, new_ids, strict=True):
                ids[position] = int(row_id)
    return ids


_PLAIN = (type(None), bool, int, float, str, bytes, dt.datetime, dt.date, decimal.Decimal)
_STEPS: weakref.WeakKeyDictionary[sa.Engine, int] = weakref.WeakKeyDictionary()


def _consecutive_step(session: Session) -> int:
    """The step between the ids of one multi-row ``INSERT`` on MariaDB, or 0 if they may not
    be consecutive.

    InnoDB gives the rows of a multi-row ``INSERT … VALUES`` consecutive ids (every
    ``auto_increment_increment``-th) unless ``innodb_autoinc_lock_mode`` is 2 ("interleaved");
    the first is the statement's ``LAST_INSERT_ID()``. Read once per engine.
    """
    connection = session.connection()
    if (connection.dialect.name, connection.dialect.driver) != ("mysql", "pymysql"):
        return 0
    engine = connection.engine
    step = _STEPS.get(engine)
    if step is None:
        mode, increment = connection.exec_driver_sql(
            "SELECT @@innodb_autoinc_lock_mode, @@auto_increment_increment"
        ).one()
        step = _STEPS[engine] = 0 if int(mode) == 2 else int(increment)
    return step


def _plain_values(rows: Sequence[Mapping[str, Any]], positions: Sequence[int]) -> bool:
    """Whether every value is one the driver writes as SQLAlchemy would (no type processing
    lost by sending it straight through the driver)."""
    return all(isinstance(v, _PLAIN) for i in positions for v in rows[i].values())


def _insert_block(session: Session, *, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert ``rows`` (the same columns each) as one multi-row ``INSERT`` straight through
    the driver; the first new id (the next ones follow it: see :func:`_consecutive_step`).

    One statement, no ``RETURNING``: the ids come as a block, as fast as a plain
    ``executemany`` of rows with ids assigned by the client.
    """
    columns = list(rows[0])
    cursor = session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        one = "(" + ", ".join(["%s"] * len(columns)) + ")"
        values = ", ".join(cursor.mogrify(one, tuple(row.values())) for row in rows)
        names = ", ".join(f"`{name}`" for name in columns)
        cursor.execute(f"INSERT INTO `{table.name}` ({names}) VALUES {values}")
        if cursor.rowcount != len(rows) or not cursor.lastrowid:
            raise RuntimeError(f"{table.name}: the insert did not add {len(rows)} rows")
        return int(cursor.lastrowid)
    finally:
        cursor.close()


def _update_many(
    session: Session,
    *,
    table: sa.Table,
    rows: Sequence[tuple[int, Mapping[str, Any]]],
    in_place: bool = False,
) -> None:
    """Update rows by primary key: one multi-row ``INSERT … ON DUPLICATE KEY UPDATE``
    (MariaDB) or ``… ON CONFLICT DO UPDATE`` (SQLite) per set of columns, which the drivers
    send as a few statements rather than one ``UPDATE`` per row. ``in_place``: plain
    ``UPDATE``s, for rows given only some of their required columns (rows another client wrote:
    the upsert's insert half would need them all).

    Columns MariaDB would rewrite on update (``ON UPDATE current_timestamp()``) keep their value
    unless ``rows`` give them one (a movie's acquisition time that came with late metadata).
    """
    (pk,) = table.primary_key.columns
    restricted = restrict_many(session, table, [values for _, values in rows])
    rows = [(row_id, values) for (row_id, _), values in zip(rows, restricted, strict=True)]
    keep = {name: table.c[name] for name in on_update_columns(table.name)}
    dialect = session.get_bind().dialect.name
    for positions in _group_by_columns([values for _, values in rows]).values():
        columns = [name for name in rows[positions[0]][1] if name != pk.name]
        kept = {name: column for name, column in keep.items() if name not in columns}
        params = [{**rows[i][1], pk.name: rows[i][0]} for i in positions]
        statement: sa.Executable
        if dialect == "mysql" and not in_place:
            upsert_mysql = mysql.insert(table)
            statement = upsert_mysql.on_duplicate_key_update(
                {name: upsert_mysql.inserted[name] for name in columns} | kept
            )
        elif dialect == "sqlite" and not in_place:
            upsert_sqlite = sqlite.insert(table)
            statement = upsert_sqlite.on_conflict_do_update(
                index_elements=[pk], set_={name: upsert_sqlite.excluded[name] for name in columns}
            )
        else:
            statement = (
                sa.update(table)
                .where(pk == sa.bindparam("_row_id"))
                .values({name: sa.bindparam(name) for name in columns} | kept)
            )
            params = [{**rows[i][1], "_row_id": rows[i][0]} for i in positions]
        session.execute(statement, params)


def _group_by_columns(rows: Sequence[Mapping[str, Any]]) -> dict[frozenset[str], list[int]]:
    """Positions of ``rows`` grouped by their set of columns: each group is one statement."""
    groups: dict[frozenset[str], list[int]] = {}
    for position, values in enumerate(rows):
        groups.setdefault(frozenset(values), []).append(position)
    return groups
