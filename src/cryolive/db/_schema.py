"""Build the database from empty, and say what is there.

ISPyB tables are created from the pinned ``ispyb`` models only where they do not exist yet
(``CREATE TABLE`` for missing tables; an existing table is never altered or dropped), so a
facility's own ISPyB is left as it is. cryolive's own tables are migrated by Alembic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from cryolive.db import ispyb_compat

# ISPyB's electron-microscopy experiment types (ISPyB's own reference data), which the
# DataCollectionGroup rows cryolive writes refer to.
EM_EXPERIMENT_TYPES = {
    36: "Tomography",
    37: "Single Particle",
    44: "Atlas",
    45: "CLEM",
    46: "FIB",
    47: "SXT",
    48: "CryoSIM",
}
MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "cryolive_alembic_version"


@dataclass(frozen=True)
class SchemaState:
    """What a database holds."""

    dialect: str
    ispyb_schema_version: str
    ispyb_tables_present: int
    ispyb_tables_missing: tuple[str, ...]
    own_revision: str | None
    own_head: str

    @property
    def up_to_date(self) -> bool:
        return not self.ispyb_tables_missing and self.own_revision == self.own_head


def _alembic_config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: sa.Engine) -> list[str]:
    """Create missing ISPyB tables and migrate cryolive's own; return the tables created."""
    metadata = ispyb_compat.metadata_for(engine.dialect.name)
    with engine.connect() as connection:
        existing = set(sa.inspect(connection).get_table_names())
    missing = [t for t in metadata.sorted_tables if t.name not in existing]
    with engine.begin() as connection:
        metadata.create_all(connection, tables=missing, checkfirst=True)
    with engine.begin() as connection:
        _seed_experiment_types(connection)
        command.upgrade(_alembic_config(connection), "head")
    return [t.name for t in missing]


def _seed_experiment_types(connection: sa.Connection) -> None:
    """Add the EM experiment types that are missing (existing rows are left alone)."""
    table = ispyb_compat.ispyb_metadata().tables["ExperimentType"]
    present = set(connection.scalars(sa.select(table.c.experimentTypeId)))
    rows = [
        {"experimentTypeId": type_id, "name": name, "proposalType": "em", "active": 1}
        for type_id, name in EM_EXPERIMENT_TYPES.items()
        if type_id not in present
    ]
    if rows:
        connection.execute(table.insert(), rows)


def current(engine: sa.Engine) -> SchemaState:
    """The state of the database behind ``engine``."""
    names = [t.name for t in ispyb_compat.ispyb_metadata().sorted_tables]
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head() or ""
    with engine.connect() as connection:
        existing = set(sa.inspect(connection).get_table_names())
        revision = MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE}
        ).get_current_revision()
    return SchemaState(
        dialect=engine.dialect.name,
        ispyb_schema_version=ispyb_compat.__schema_version__,
        ispyb_tables_present=sum(name in existing for name in names),
        ispyb_tables_missing=tuple(name for name in names if name not in existing),
        own_revision=revision,
        own_head=head,
    )
