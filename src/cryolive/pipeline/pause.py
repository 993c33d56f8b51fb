"""Resumed collections: publish the work held while they were paused (each pipeline poll)."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from cryolive.db.repo.pause import take_released
from cryolive.messaging.transport import Transport
from cryolive.pipeline.runs import publish

log = logging.getLogger(__name__)


def release_resumed(sessions: sessionmaker[Session], transport: Transport) -> int:
    """Publish held work whose collection was resumed; return how many messages."""
    with sessions.begin() as session:
        messages = take_released(session)
    publish(transport, messages)
    if messages:
        log.info("resumed: %d held message(s) published", len(messages))
    return len(messages)
