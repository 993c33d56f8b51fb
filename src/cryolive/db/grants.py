"""Least privilege on MariaDB: a writer account and a read-only account.

The writer (the pipeline's writer service, the watcher, the web server's few writes: job
requests, stops, logins) may read everything and insert or update only the tables the pipeline
and the web write; the reader (the web server) may only read. Admin work —
proposals, visits, people — stays with the database's administrator.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

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
    """Create (or re-grant) the two accounts on the MariaDB database behind ``engine``."""
    if engine.dialect.name != "mysql":
        raise ValueError("engine: accounts exist on MariaDB only (SQLite has no users)")
    database = engine.url.database
    if not database:
        raise ValueError("engine: its URL names no database")
    with engine.begin() as connection:
        for account in (writer, reader):
            connection.exec_driver_sql(
                f"CREATE USER IF NOT EXISTS {account.sql()} IDENTIFIED BY %s",
                (account.password,),
            )
            connection.exec_driver_sql(
                f"ALTER USER {account.sql()} IDENTIFIED BY %s", (account.password,)
            )
            connection.exec_driver_sql(f"GRANT SELECT ON `{database}`.* TO {account.sql()}")
        for table in PIPELINE_TABLES:
            connection.exec_driver_sql(
                f"GRANT INSERT, UPDATE ON `{database}`.`{table}` TO {writer.sql()}"
            )
        for table in ("cryolive_work_item", "cryolive_web_session"):
            connection.exec_driver_sql(f"GRANT DELETE ON `{database}`.`{table}` TO {writer.sql()}")
