"""Build the database from empty, and say what is there.

cryolive's own tables (``cryolive_*``) are migrated by Alembic. ISPyB's tables belong to ISPyB:

- on a database without ISPyB (a fresh SQLite file, an empty MariaDB database) cryolive creates
  the ISPyB tables from the pinned ``ispyb`` models, marks the database as built by cryolive (a
  ``SchemaStatus`` row) and seeds the EM experiment types;
- on a facility's ISPyB (a ``Proposal`` table that cryolive did not create) it never creates,
  alters or fills an ISPyB table: :func:`current` says what cryolive needs that is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from cryolive.db import _live, ispyb_compat
from cryolive.db._needs import NEEDS

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
# The SchemaStatus row that says cryolive built this database's ISPyB tables itself.
BUILT_BY_CRYOLIVE = "cryolive: ispyb models"
Origin = Literal["none", "cryolive", "facility"]


@dataclass(frozen=True)
class SchemaState:
    """What a database holds, and what cryolive needs that it lacks."""

    dialect: str
    ispyb_origin: Origin  # no ISPyB yet, built by cryolive, or the facility's own
    ispyb_schema_version: str  # AdminVar's schemaVersion, else the models' version
    ispyb_last_script: str | None  # the newest script recorded in SchemaStatus
    models_version: str
    ispyb_tables_present: int  # of the models' tables
    ispyb_tables_missing: tuple[str, ...]  # tables cryolive needs and the database lacks
    ispyb_columns_missing: tuple[str, ...]  # "Table.column" cryolive needs and lacks
    ispyb_columns_unused: tuple[str, ...]  # in the models, not in the database, not needed
    own_revision: str | None
    own_head: str

    @property
    def up_to_date(self) -> bool:
        """Everything cryolive needs is there (ISPyB's and its own tables)."""
        return (
            not self.ispyb_tables_missing
            and not self.ispyb_columns_missing
            and self.own_revision == self.own_head
        )


def _alembic_config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _schema_status(connection: sa.Connection) -> sa.Table:
    return ispyb_compat.metadata_for(connection.dialect.name).tables["SchemaStatus"]


def ispyb_origin(connection: sa.Connection) -> Origin:
    """Whose ISPyB tables these are.

    ``"none"`` without a ``Proposal`` table; ``"cryolive"`` where cryolive's mark is in
    ``SchemaStatus`` (or ``SchemaStatus`` is empty beside cryolive's own tables: built by a
    cryolive from before the mark); ``"facility"`` otherwise — a published-schema ISPyB records
    every script it ran in ``SchemaStatus``.
    """
    existing = set(sa.inspect(connection).get_table_names())
    if "Proposal" not in existing:
        return "none"
    if "SchemaStatus" not in existing:
        return "facility"
    status = _schema_status(connection)
    marked = connection.scalar(
        sa.select(status.c.schemaStatusId)
        .where(status.c.scriptName.startswith(BUILT_BY_CRYOLIVE))
        .limit(1)
    )
    if marked is not None:
        return "cryolive"
    empty = connection.scalar(sa.select(status.c.schemaStatusId).limit(1)) is None
    return "cryolive" if empty and VERSION_TABLE in existing else "facility"


def upgrade(engine: sa.Engine) -> list[str]:
    """Migrate cryolive's own tables, and create the ISPyB tables only where cryolive owns
    ISPyB (see the module's docstring); return the ISPyB tables created."""
    metadata = ispyb_compat.metadata_for(engine.dialect.name)
    with engine.connect() as connection:
        origin = ispyb_origin(connection)
        existing = set(sa.inspect(connection).get_table_names())
    missing = (
        []
        if origin == "facility"
        else [t for t in metadata.sorted_tables if t.name not in existing]
    )
    if origin != "facility":
        status = metadata.tables["SchemaStatus"]
        with engine.begin() as connection:
            # The mark goes in first: an upgrade cut short is still recognised as cryolive's.
            status.create(connection, checkfirst=True)
            _mark_built_by_cryolive(connection)
        with engine.begin() as connection:
            metadata.create_all(connection, tables=missing, checkfirst=True)
        with engine.begin() as connection:
            _seed_experiment_types(connection)
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "head")
    _live.forget(engine)
    return [t.name for t in missing]


def _mark_built_by_cryolive(connection: sa.Connection) -> None:
    status = _schema_status(connection)
    mark = f"{BUILT_BY_CRYOLIVE} {ispyb_compat.__schema_version__}"
    if connection.scalar(sa.select(status.c.schemaStatusId).where(status.c.scriptName == mark)):
        return
    connection.execute(status.insert().values(scriptName=mark, schemaStatus="DONE"))


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


def _recorded_version(
    connection: sa.Connection, existing: set[str]
) -> tuple[str | None, str | None]:
    """(AdminVar's schemaVersion, the newest SchemaStatus script) where the tables exist."""
    tables = ispyb_compat.ispyb_metadata().tables
    version = script = None
    if "AdminVar" in existing:
        admin = tables["AdminVar"]
        version = connection.scalar(
            sa.select(admin.c.value).where(admin.c.name == "schemaVersion").limit(1)
        )
    if "SchemaStatus" in existing:
        status = tables["SchemaStatus"]
        script = connection.scalar(
            sa.select(status.c.scriptName)
            .where(~status.c.scriptName.startswith(BUILT_BY_CRYOLIVE))
            .order_by(status.c.schemaStatusId.desc())
            .limit(1)
        )
    return (
        None if version is None else str(version),
        None if script is None else str(script).strip(),
    )


def current(engine: sa.Engine) -> SchemaState:
    """The state of the database behind ``engine``."""
    tables = ispyb_compat.ispyb_metadata().tables
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head() or ""
    with engine.connect() as connection:
        existing = set(sa.inspect(connection).get_table_names())
        origin = ispyb_origin(connection)
        live = _live.reflect(connection)
        version, script = _recorded_version(connection, existing)
        revision = MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE}
        ).get_current_revision()
    missing_columns = [
        f"{table}.{column}"
        for table, columns in NEEDS.items()
        if table in existing
        for column in columns
        if column not in live.columns.get(table, frozenset())
    ]
    unused = [
        f"{name}.{column}"
        for name in NEEDS
        if name in existing
        for column in live.missing_columns(tables[name])
        if column not in NEEDS[name]
    ]
    return SchemaState(
        dialect=engine.dialect.name,
        ispyb_origin=origin,
        ispyb_schema_version=version or ispyb_compat.__schema_version__,
        ispyb_last_script=script,
        models_version=ispyb_compat.__schema_version__,
        ispyb_tables_present=sum(name in existing for name in tables),
        ispyb_tables_missing=tuple(name for name in NEEDS if name not in existing),
        ispyb_columns_missing=tuple(missing_columns),
        ispyb_columns_unused=tuple(unused),
        own_revision=revision,
        own_head=head,
    )
