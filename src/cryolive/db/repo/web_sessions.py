"""Web sessions recorded on the server (``cryolive_web_session``).

A session cookie is only good while its row exists and has not expired: logging out deletes
the row, and :func:`end_all` (a password change, losing staff rights) deletes every row of the
person. Rows are keyed by the SHA-256 of the cookie's random nonce.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import sqlalchemy as sa
from sqlalchemy.orm import Session

from cryolive.db.models import WebSession


def _key(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def start(session: Session, *, nonce: str, person_id: int, lasts: dt.timedelta) -> None:
    """Record a new login (and forget the person's expired ones)."""
    now = _now()
    session.execute(
        sa.delete(WebSession).where(WebSession.person_id == person_id, WebSession.expires_at <= now)
    )
    session.add(
        WebSession(key=_key(nonce), person_id=person_id, created_at=now, expires_at=now + lasts)
    )
    session.flush()


def is_live(session: Session, *, nonce: str, person_id: int) -> bool:
    """Whether the login with ``nonce`` is ``person_id``'s, not ended and not expired."""
    row = session.get(WebSession, _key(nonce))
    return row is not None and row.person_id == person_id and row.expires_at > _now()


def end(session: Session, *, nonce: str) -> None:
    """End one login (logging out)."""
    session.execute(sa.delete(WebSession).where(WebSession.key == _key(nonce)))


def end_all(session: Session, *, person_id: int) -> int:
    """End every login of ``person_id``; how many there were."""
    result = session.execute(sa.delete(WebSession).where(WebSession.person_id == person_id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
