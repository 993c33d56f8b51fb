"""cryolive on a facility's ISPyB, built from Diamond's published schema (MariaDB).

The published schema lags the ``ispyb`` package's models (no ``MillingStep`` table, no
``AutoProcProgram.jobUuid``): cryolive must leave ISPyB's tables alone, use only the columns
that exist, and say what it needs.
"""

from __future__ import annotations

import sqlalchemy as sa
from ispyb.sqlalchemy import AutoProcProgram, ProcessingJob
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cryolive.cli import build_app
from cryolive.db import current, make_engine
from cryolive.db.repo import collections, visits


def _run(url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), list(args), env={"CRYOLIVE_DATABASE_URL": url})
    return result.exit_code, result.output


def _ispyb_fingerprint(engine: sa.Engine) -> dict[str, object]:
    """Every non-cryolive table's columns, indexes and constraints, and the reference rows."""
    with engine.connect() as connection:
        columns = connection.execute(
            sa.text(
                "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT "
                "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
                "AND TABLE_NAME NOT LIKE 'cryolive%' ORDER BY 1, 2"
            )
        ).all()
        indexes = connection.execute(
            sa.text(
                "SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS "
                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME NOT LIKE 'cryolive%' "
                "ORDER BY 1, 2, 3"
            )
        ).all()
        counts = {
            table: connection.scalar(sa.text(f"SELECT COUNT(*) FROM `{table}`"))
            for table in ("SchemaStatus", "AdminVar", "ExperimentType", "Proposal", "Person")
        }
    return {"columns": columns, "indexes": indexes, "counts": counts}


def test_upgrade_creates_only_cryolive_tables_and_current_says_what_is_missing(
    real_ispyb_url: str,
) -> None:
    engine = make_engine(real_ispyb_url)
    before_tables = set(sa.inspect(engine).get_table_names())
    before = _ispyb_fingerprint(engine)

    code, out = _run(real_ispyb_url, "db", "current")
    assert code == 1, out  # cryolive's own tables are not there yet
    assert "the facility's own" in out and "run `cryolive db upgrade`" in out

    code, out = _run(real_ispyb_url, "db", "upgrade")
    assert code == 0, out
    assert "left as it is" in out
    assert _run(real_ispyb_url, "db", "upgrade")[0] == 0  # and again

    added = set(sa.inspect(engine).get_table_names()) - before_tables
    assert added and all(name.startswith("cryolive_") for name in added), added
    assert "MillingStep" not in added
    assert _ispyb_fingerprint(engine) == before

    state = current(engine)
    assert state.ispyb_origin == "facility"
    assert state.ispyb_schema_version == "5.0.0"  # AdminVar's schemaVersion
    assert state.ispyb_last_script == "2026_04_23_AdminVar_bump_version.sql"
    assert state.up_to_date
    assert "AutoProcProgram.jobUuid" in state.ispyb_columns_unused
    code, out = _run(real_ispyb_url, "db", "current")
    assert code == 0, out
    assert "2026_04_23_AdminVar_bump_version.sql" in out and "AutoProcProgram.jobUuid" in out

    # A column cryolive writes goes missing: current names it and fails; upgrade does not
    # try to add it (it is ISPyB's table).
    with engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE CTF DROP COLUMN iceRingDensity")
    code, out = _run(real_ispyb_url, "db", "current")
    assert code == 1 and "CTF.iceRingDensity" in out
    assert "ISPyB administrator" in out
    assert _run(real_ispyb_url, "db", "upgrade")[0] == 1
    assert "iceRingDensity" not in {c["name"] for c in sa.inspect(engine).get_columns("CTF")}
    engine.dispose()


def test_programs_are_written_and_read_without_the_columns_the_schema_lacks(
    real_ispyb_upgraded_url: str,
) -> None:
    """``AutoProcProgram.jobUuid`` is in the models only: inserts leave it out, ORM loads of
    the whole entity (as ``cryolive run`` polls) defer it."""
    engine = make_engine(real_ispyb_upgraded_url)
    with Session(engine) as session, session.begin():
        session_id = visits.ensure_visit(session, visit="cm31111-9", microscope="m02")
        _, dc_id = collections.register_data_collection(
            session,
            spec=collections.DataCollectionSpec(
                session_id=session_id, image_directory="/dls/m02/data/2026/cm31111-9/raw"
            ),
        )
        job_id, program_id = collections.register_processing_job(
            session, data_collection_id=dc_id, recipe="spa", request_key="auto", parameters={}
        )
        collections.add_program_message(
            session, auto_proc_program_id=program_id, severity="INFO", message="started"
        )
    with Session(engine) as session:
        program = session.get(AutoProcProgram, program_id)
        assert program is not None and program.processingJobId == job_id
        pairs = session.execute(
            sa.select(ProcessingJob, AutoProcProgram)
            .join(AutoProcProgram, AutoProcProgram.processingJobId == ProcessingJob.processingJobId)
            .where(ProcessingJob.dataCollectionId == dc_id)
        ).all()
        assert [(j.processingJobId, p.autoProcProgramId) for j, p in pairs] == [
            (job_id, program_id)
        ]
    engine.dispose()
