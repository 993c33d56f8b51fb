"""cryolive uses only the ISPyB columns the database has, and knows which ones it needs."""

from __future__ import annotations

import ast
from pathlib import Path

import ispyb.sqlalchemy as ispyb_models
import sqlalchemy as sa
from ispyb.sqlalchemy import AutoProcProgram, Base
from sqlalchemy.orm import Session

from cryolive import records as records_module
from cryolive.db import current, make_engine, upgrade
from cryolive.db._needs import NEEDS
from cryolive.db.repo import collections, visits

SRC = Path(__file__).resolve().parents[2] / "src" / "cryolive"


def _sqlite_without(tmp_path: Path, *columns: tuple[str, str]) -> str:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as connection:
        for table, column in columns:
            connection.exec_driver_sql(f'ALTER TABLE "{table}" DROP COLUMN "{column}"')
    engine.dispose()
    return url


def test_a_column_the_database_lacks_is_left_out_of_writes_and_loads(tmp_path: Path) -> None:
    url = _sqlite_without(tmp_path, ("AutoProcProgram", "jobUuid"))
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        session_id = visits.ensure_visit(session, visit="bi1-1", microscope="m02")
        _, dc_id = collections.register_data_collection(
            session,
            spec=collections.DataCollectionSpec(session_id=session_id, image_directory="/d/raw"),
        )
        _, program_id = collections.register_processing_job(
            session, data_collection_id=dc_id, recipe="spa", request_key="auto", parameters={}
        )
    with Session(engine) as session:
        program = session.get(AutoProcProgram, program_id)
        assert program is not None and program.processingPrograms == "cryolive"
        assert session.scalars(sa.select(AutoProcProgram)).all() == [program]
        # Column selects of the same model take no loader options (they would be an error).
        assert session.scalars(sa.select(AutoProcProgram.autoProcProgramId)).all() == [program_id]
    state = current(engine)
    assert state.up_to_date and state.ispyb_columns_unused == ("AutoProcProgram.jobUuid",)
    engine.dispose()


def test_current_names_a_needed_column_that_is_missing(tmp_path: Path) -> None:
    engine = make_engine(_sqlite_without(tmp_path, ("Movie", "fluence")))
    state = current(engine)
    assert state.ispyb_columns_missing == ("Movie.fluence",)
    assert not state.up_to_date
    engine.dispose()


def _models() -> dict[str, str]:
    """ORM class or table name in ``ispyb.sqlalchemy`` -> ISPyB table name."""
    found = {}
    for name, value in vars(ispyb_models).items():
        table = getattr(value, "__table__", value)
        if isinstance(table, sa.Table) and table.metadata is Base.metadata:
            found[name] = table.name
    return found


def test_every_ispyb_column_the_code_names_is_in_the_needs() -> None:
    """A column used in ``Model.column`` (or ``t_Table.c.column``) anywhere in cryolive must
    be listed in NEEDS, so ``db current`` checks it on a facility's database."""
    models = _models()
    used: set[tuple[str, str]] = set()
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "ispyb.sqlalchemy"
            for alias in node.names
        }
        aliases = {
            alias.asname or alias.name: alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "ispyb.sqlalchemy"
            for alias in node.names
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            base = node.value
            if isinstance(base, ast.Attribute) and base.attr == "c":
                base = base.value
            if isinstance(base, ast.Name) and base.id in imported:
                table = models.get(aliases[base.id])
                if table and node.attr in Base.metadata.tables[table].c:
                    used.add((table, node.attr))
    for value in vars(records_module).values():
        if isinstance(value, type) and isinstance(getattr(value, "TABLE", None), str):
            used |= {(value.TABLE, column) for column in value.COLUMNS.values()}
    assert used, "the scan found nothing: is SRC right?"
    missing = sorted(f"{t}.{c}" for t, c in used if c not in NEEDS.get(t, ()))
    assert not missing, f"add to cryolive.db._needs.NEEDS: {missing}"
