"""Idempotent upserts of rows that belong to a parent row and a program.

A motion correction is identified by its movie and the program that made it; a CTF fit by its
motion correction and its program. ISPyB already holds (and indexes) both columns, so no key of
our own is needed: a writer locks the parent rows (``SELECT … FOR UPDATE``; SQLite's writers are
serialised by ``BEGIN IMMEDIATE`` already), then finds the children that exist by those two
columns, updates them, and inserts the rest. Two writers of the same child queue on the parent's
lock, and the second finds what the first wrote. Rows another ISPyB client wrote the same way are
recognised too. Children of parents that the same transaction has just inserted, and given no
children yet, skip the lock and the look-up: nobody else can see those parents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from cryolive.db.repo._keys import (
    _chunks,
    _insert_returning,
    _transaction_notes,
    _update_many,
    new_in_transaction,
    note_new_rows,
)

ChildKey = tuple[int, int]  # (parent id, program id)


def note_children(
    session: Session, *, table: sa.Table, parent_column: str, ids: Sequence[int]
) -> None:
    """Remember that this transaction wrote children in ``table`` of parents ``ids``."""
    _transaction_notes(session).setdefault(f"{table.name}.{parent_column}", set()).update(ids)


def had_children(
    session: Session, *, table: sa.Table, parent_column: str, ids: Sequence[int]
) -> bool:
    """Whether this transaction has written children in ``table`` of any of parents ``ids``."""
    noted = _transaction_notes(session).get(f"{table.name}.{parent_column}", set())
    return not noted.isdisjoint(ids)


def lock_parents(session: Session, *, parent: sa.Table, ids: Sequence[int]) -> None:
    """Lock parent rows for this transaction, in id order (so two writers cannot deadlock)."""
    (pk,) = parent.primary_key.columns
    for chunk in _chunks(sorted(set(ids))):
        session.execute(sa.select(pk).where(pk.in_(chunk)).with_for_update())


def find_children(
    session: Session,
    *,
    table: sa.Table,
    parent_column: str,
    program_column: str,
    keys: Sequence[ChildKey],
) -> dict[ChildKey, int]:
    """Ids of the children that exist, by (parent id, program id); the first if several."""
    (pk,) = table.primary_key.columns
    parent, program = table.c[parent_column], table.c[program_column]
    wanted = set(keys)
    found: dict[ChildKey, int] = {}
    programs = sorted({p for _, p in wanted})
    for chunk in _chunks(sorted({k for k, _ in wanted})):
        rows = session.execute(
            sa.select(parent, program, pk)
            .where(parent.in_(chunk), program.in_(programs))
            .order_by(pk)
        )
        for parent_id, program_id, row_id in rows:
            key = (int(parent_id), int(program_id))
            if key in wanted:
                found.setdefault(key, int(row_id))
    return found


def upsert_children(
    session: Session,
    *,
    table: sa.Table,
    parent: sa.Table,
    parent_column: str,
    program_column: str,
    rows: Sequence[tuple[ChildKey, Mapping[str, Any]]],
) -> list[int]:
    """Insert or update one child per (parent id, program id); ids in the order given."""
    if not rows:
        return []
    latest: dict[ChildKey, Mapping[str, Any]] = {}
    for key, values in rows:
        latest[key] = {**values, parent_column: key[0], program_column: key[1]}
    parent_ids = [parent_id for parent_id, _ in latest]
    ids: dict[ChildKey, int] = {}
    fresh = new_in_transaction(session, table=parent, ids=parent_ids)
    if fresh:  # unless this transaction has already given some of them children here
        fresh = not had_children(session, table=table, parent_column=parent_column, ids=parent_ids)
    if not fresh:
        lock_parents(session, parent=parent, ids=parent_ids)
        ids = find_children(
            session,
            table=table,
            parent_column=parent_column,
            program_column=program_column,
            keys=list(latest),
        )
    new_keys = [key for key in latest if key not in ids]
    if new_keys:
        inserted = _insert_returning(session, table=table, rows=[latest[k] for k in new_keys])
        ids.update(zip(new_keys, inserted, strict=True))
        note_new_rows(session, table=table, ids=inserted)
    note_children(session, table=table, parent_column=parent_column, ids=parent_ids)
    old_keys = [key for key in latest if key not in set(new_keys)]
    if old_keys:
        _update_many(session, table=table, rows=[(ids[k], latest[k]) for k in old_keys])
    return [ids[key] for key, _ in rows]
