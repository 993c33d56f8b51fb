"""A movie's failed step tried again, exactly once.

A movie that failed because its file was incomplete (a writer that stalled, then finished) or
because its metadata was missing (the XML came late) is worth one more attempt when the file or
its metadata changes. The failure stays on record, demoted to a WARNING that says it was
retried, and its natural key is moved aside to ``(…, stage, "retried")``: the work counts as
open again, and a second failure of the retry is recorded as a new ERROR under the original key.
That moved key is also the memory that the retry happened, so it is never made twice, across
restarts too: a movie that fails again stays failed (no loop).
"""

from __future__ import annotations

import sqlalchemy as sa
from ispyb.sqlalchemy import AutoProcProgramMessage
from sqlalchemy.orm import Session

from cryolive.db.models import WorkKey
from cryolive.db.repo._keys import key_hash, table_of
from cryolive.records import MovieRef

MESSAGE = table_of(AutoProcProgramMessage)
RETRIED = "retried"


def failure_descriptions(session: Session, *, program_id: int, stage: str) -> list[str]:
    """Descriptions (``<movie path>: <why>``) of the ERRORs ``stage`` recorded in one run."""
    rows = session.scalars(
        sa.select(AutoProcProgramMessage.description).where(
            AutoProcProgramMessage.autoProcProgramId == program_id,
            AutoProcProgramMessage.severity == "ERROR",
            AutoProcProgramMessage.message.like(f"{stage}: %"),
        )
    )
    return [str(r) for r in rows if r]


def retry_failure(session: Session, *, movie: MovieRef, program_id: int, stage: str) -> bool:
    """Set aside the recorded failure of ``stage`` on ``movie`` in run ``program_id`` so that
    the step can run again. False (and nothing changed) when there is no such failure, or when
    it was retried once already."""
    parts = (*movie.key, program_id, stage)
    old = key_hash(MESSAGE.name, parts)
    new = key_hash(MESSAGE.name, (*parts, RETRIED))
    found = dict(
        session.execute(
            sa.select(WorkKey.natural_key, WorkKey.row_id).where(
                WorkKey.natural_key.in_([old, new])
            )
        ).all()
    )
    if new in found or old not in found:
        return False
    session.execute(sa.update(WorkKey).where(WorkKey.natural_key == old).values(natural_key=new))
    row = session.get(AutoProcProgramMessage, found[old])
    if row is not None:
        row.severity = "WARNING"
        row.message = f"{RETRIED}: {row.message or ''}"[:200]
    session.flush()
    return True
