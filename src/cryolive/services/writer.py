"""The writer: the one service that holds database write rights in a facility deployment.

Each message is a batch of typed records; they are written as idempotent upserts in one
transaction, so a redelivered or repeated message changes nothing. When the database is down,
the write fails, the message is retried later with a growing delay (up to a minute between
tries, for about half an hour), and then dead-lettered, from where `cryolive dlq reinject`
brings it back: an outage delays results, it does not drop them.
"""

from __future__ import annotations

import time

from cryolive.db.repo.pipeline import write_records
from cryolive.messaging.service import Context, Service
from cryolive.services._common import sessions_for
from cryolive.services.messages import WriteResults


def writer_service(database_url: str) -> Service[WriteResults]:
    def write(message: WriteResults, context: Context) -> None:
        with sessions_for(database_url).begin() as session:
            write_records(session, records=message.records, now=time.time())

    return Service(
        "writer", WriteResults, write, max_attempts=40, retry_base_s=0.5, retry_max_s=60.0
    )
