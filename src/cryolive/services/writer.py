"""The writer: the one service that holds database write rights in a facility deployment.

Each message is a batch of typed records; they are written as idempotent upserts in one
transaction, so a redelivered or repeated message changes nothing. A worker with
``prefetch > 1`` hands the writer the messages already waiting (up to the prefetch) at once:
their records are written together in one transaction, one commit for all, and each message
is acknowledged after it; should
that transaction fail, each message is written again in a transaction of its own, so that a
message with bad records fails alone. When the database is down, the write fails, the message
is retried later with a growing delay (up to a minute between tries, for about half an hour),
and then dead-lettered, from where `cryolive dlq reinject` brings it back: an outage delays
results, it does not drop them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from cryolive.db.repo.pipeline import write_records
from cryolive.messaging.service import Context, Service
from cryolive.services._common import sessions_for
from cryolive.services.messages import WriteResults

BATCH = 50  # messages per transaction at most, where the worker's prefetch allows


def writer_service(database_url: str) -> Service[WriteResults]:
    def write(message: WriteResults, context: Context) -> None:
        with sessions_for(database_url).begin() as session:
            write_records(session, records=message.records, now=time.time())

    def write_many(items: Sequence[tuple[WriteResults, Context]]) -> None:
        # All the records as one batch (bulk statements, one commit): a key that comes twice
        # keeps its last values, as when the messages are written one after another.
        records = [record for message, _ in items for record in message.records]
        with sessions_for(database_url).begin() as session:
            write_records(session, records=records, now=time.time())

    return Service(
        "writer",
        WriteResults,
        write,
        max_attempts=40,
        retry_base_s=0.5,
        retry_max_s=60.0,
        batch_handler=write_many,
    )
