"""Building the database: ISPyB tables from the pinned models, cryolive's own by Alembic."""

from __future__ import annotations

import sqlalchemy as sa
from ispyb.sqlalchemy import Base, Movie
from sqlalchemy.orm import Session

from cryolive.db import current, make_engine, upgrade
from cryolive.db.ispyb_compat import on_update_columns, sqlite_metadata


def test_upgrade_builds_everything_from_empty_and_is_repeatable(empty_db_url: str) -> None:
    engine = make_engine(empty_db_url)
    before = current(engine)
    assert before.ispyb_tables_present == 0
    assert before.own_revision is None
    assert before.ispyb_origin == "none"
    assert not before.up_to_date

    created = upgrade(engine)
    state = current(engine)
    assert len(created) == len(Base.metadata.tables)
    assert state.up_to_date
    assert state.ispyb_schema_version == "5.2.0"
    assert {"cryolive_work_key", "cryolive_credential", "cryolive_work_item"} <= set(
        sa.inspect(engine).get_table_names()
    )
    assert upgrade(engine) == []  # a second run creates nothing
    assert state.ispyb_origin == "cryolive"  # marked in SchemaStatus
    engine.dispose()


def test_ispyb_tables_come_back_only_where_cryolive_built_them(empty_db_url: str) -> None:
    """cryolive re-creates a missing ISPyB table in its own ISPyB; once SchemaStatus says the
    ISPyB is someone else's (scripts of theirs, no mark of cryolive's), it never does."""
    engine = make_engine(empty_db_url)
    upgrade(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            'DROP TABLE "MillingStep"'
            if engine.dialect.name == "sqlite"
            else "DROP TABLE `MillingStep`"
        )
    assert upgrade(engine) == ["MillingStep"]
    with engine.begin() as connection:
        status = sa.table("SchemaStatus", sa.column("scriptName"), sa.column("schemaStatus"))
        connection.execute(sa.delete(status))
        connection.execute(
            sa.insert(status).values(scriptName="2026_01_01_site_update.sql", schemaStatus="DONE")
        )
        connection.exec_driver_sql(
            'DROP TABLE "MillingStep"'
            if engine.dialect.name == "sqlite"
            else "DROP TABLE `MillingStep`"
        )
    assert current(engine).ispyb_origin == "facility"
    assert upgrade(engine) == []
    assert "MillingStep" not in sa.inspect(engine).get_table_names()
    engine.dispose()


def test_an_existing_ispyb_table_is_left_as_it_is(empty_db_url: str) -> None:
    """A facility's own ISPyB table (here a Movie with its own columns) is never altered."""
    engine = make_engine(empty_db_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            'CREATE TABLE "Movie" ("movieId" INTEGER PRIMARY KEY, "siteColumn" VARCHAR(10))'
            if engine.dialect.name == "sqlite"
            else "CREATE TABLE `Movie` (`movieId` INT PRIMARY KEY, `siteColumn` VARCHAR(10))"
        )
    created = upgrade(engine)
    assert "Movie" not in created
    assert "MotionCorrection" in created
    columns = {c["name"] for c in sa.inspect(engine).get_columns("Movie")}
    assert columns == {"movieId", "siteColumn"}
    engine.dispose()


def test_sqlite_copy_of_the_models_is_portable() -> None:
    metadata = sqlite_metadata()
    names = [index.name for table in metadata.tables.values() for index in table.indexes]
    assert len(names) == len(set(names)), "SQLite index names are per database: no repeats"
    ddl = "\n".join(
        str(sa.schema.CreateTable(t).compile(dialect=sa.dialects.sqlite.dialect()))
        for t in metadata.sorted_tables
    ).lower()
    for mysql_only in ("tinyint", "mediumint", "longtext", "longblob", "current_timestamp()"):
        assert mysql_only not in ddl
    # The ORM keeps mapping to the original MariaDB tables.
    assert Movie.__table__.metadata is Base.metadata
    assert on_update_columns("Movie") == ("createdTimeStamp",)


def test_server_defaults_work_on_both_backends(db: Session) -> None:
    row = Movie(movieFullPath="/tmp/x.tiff")
    db.add(row)
    db.flush()
    db.refresh(row)
    assert (
        row.createdTimeStamp is not None
    )  # current_timestamp() on MariaDB, CURRENT_TIMESTAMP here


def test_unsupported_database_is_a_clear_error() -> None:
    import pytest

    with pytest.raises(ValueError, match="url: unsupported database"):
        make_engine("postgresql://localhost/x")
