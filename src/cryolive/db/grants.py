"""Least privilege on MariaDB: a writer account and a read-only account, through two roles.

Modelled on ISPyB's published roles: ``cryolive_processing`` is cryolive's ``ispyb_processing``
(read everything; insert and update only the tables the pipeline writes — the pipeline's
writer service, the watcher, and the web server's few writes: job requests, stops, logins) and
``cryolive_web`` its ``ispyb_web`` without the writes (read everything). Admin work —
proposals, visits, people — stays with the database's administrator. A facility can grant the
roles to accounts it already has (``GRANT cryolive_processing TO zocalo@'%'``).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

WRITER_ROLE = "cryolive_processing"
READER_ROLE = "cryolive_web"
# What the writer inserts and updates, one table a line (keep it easy to merge).
PIPELINE_TABLES = (
    "DataCollectionGroup",
    "DataCollection",
    "ProcessingJob",
    "ProcessingJobParameter",
    "AutoProcProgram",
    "AutoProcProgramAttachment",
    "AutoProcProgramMessage",
    "Atlas",
    "GridSquare",
    "FoilHole",
    "Movie",
    "MotionCorrection",
    "CTF",
    "RelativeIceThickness",
    "ParticlePicker",
    "ParticleClassificationGroup",
    "ParticleClassification",
    "CryoemInitialModel",
    "ParticleClassification_has_CryoemInitialModel",
    "BFactorFit",
    "cryolive_work_key",
    "cryolive_work_item",
    "cryolive_web_session",  # the web server's logins (it writes through the writer account)
    "cryolive_curation_thresholds",  # users' curation (the web and `cryolive curate`)
    "cryolive_curation_decision",
    "cryolive_alert",  # the alert evaluator (in the pipeline's process)
    "cryolive_visit_alerts",  # members' e-mail opt-in (web)
    "cryolive_paused_collection",  # pause (web); resume deletes the row
    "cryolive_held_work",  # the watcher holds a paused collection's work; resume deletes it
    "cryolive_class_choice",  # users' choices of 2D classes (the web, through the writer)
    "cryolive_worker_heartbeat",
    "cryolive_classification_time",
    "cryolive_series_row",  # the series summary, kept with the results it copies
)
WRITER_DELETES = (
    "cryolive_work_item",
    "cryolive_web_session",
    "cryolive_paused_collection",
    "cryolive_held_work",
    "cryolive_class_choice",
    "cryolive_worker_heartbeat",  # rows of processes silent for a week
)


@dataclass(frozen=True)
class Account:
    name: str
    password: str
    host: str = "%"

    def __post_init__(self) -> None:
        if "'" in self.host or "\\" in self.host:
            raise ValueError(f"account host: no quotes, got {self.host!r}")
        if not self.name or not self.name.replace("_", "").isalnum() or len(self.name) > 80:
            raise ValueError(f"account name: letters, digits and '_' only, got {self.name!r}")
        if len(self.password) < 12:
            raise ValueError(f"password of {self.name}: at least 12 characters")

    def sql(self) -> str:
        """``'name'@'host'`` for a statement sent through the driver ('%' doubled, as the
        driver formats every statement it is given)."""
        return f"'{self.name}'@'{self.host.replace('%', '%%')}'"


def grant_accounts(engine: sa.Engine, *, writer: Account, reader: Account) -> None:
    """Create (or re-grant) the two roles and the two accounts on the MariaDB database behind
    ``engine`` (run as its administrator, after ``cryolive db upgrade``)."""
    if engine.dialect.name != "mysql":
        raise ValueError("engine: accounts exist on MariaDB only (SQLite has no users)")
    database = engine.url.database
    if not database:
        raise ValueError("engine: its URL names no database")
    with engine.begin() as connection:
        existing = set(sa.inspect(connection).get_table_names())
        missing = [t for t in PIPELINE_TABLES if t not in existing]
        if missing:
            raise ValueError(
                f"database {database}: no table {', '.join(missing)}; "
                "run `cryolive db upgrade` first"
            )
        for role in (WRITER_ROLE, READER_ROLE):
            connection.exec_driver_sql(f"CREATE ROLE IF NOT EXISTS {role}")
            connection.exec_driver_sql(f"GRANT SELECT ON `{database}`.* TO {role}")
        for table in PIPELINE_TABLES:
            connection.exec_driver_sql(
                f"GRANT INSERT, UPDATE ON `{database}`.`{table}` TO {WRITER_ROLE}"
            )
        for table in WRITER_DELETES:
            connection.exec_driver_sql(f"GRANT DELETE ON `{database}`.`{table}` TO {WRITER_ROLE}")
        for account, role in ((writer, WRITER_ROLE), (reader, READER_ROLE)):
            connection.exec_driver_sql(
                f"CREATE USER IF NOT EXISTS {account.sql()} IDENTIFIED BY %s",
                (account.password,),
            )
            connection.exec_driver_sql(
                f"ALTER USER {account.sql()} IDENTIFIED BY %s", (account.password,)
            )
            connection.exec_driver_sql(f"GRANT {role} TO {account.sql()}")
            connection.exec_driver_sql(f"SET DEFAULT ROLE {role} FOR {account.sql()}")
