"""``cryolive db`` and ``cryolive admin`` on both backends, with good and bad input."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cryolive.cli import build_app
from cryolive.db import make_engine
from cryolive.db.repo import visits


def _run(url: str, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(
        build_app(), list(args), input=stdin, env={"CRYOLIVE_DATABASE_URL": url}
    )
    return result.exit_code, result.output


def test_build_a_database_and_a_visit_from_the_command_line(empty_db_url: str) -> None:
    code, out = _run(empty_db_url, "db", "current")
    assert code == 1 and "run `cryolive db upgrade`" in out  # everything is missing
    code, out = _run(empty_db_url, "db", "upgrade")
    assert code == 0 and "created 205 ISPyB table(s)" in out
    code, out = _run(empty_db_url, "db", "current")
    assert code == 0 and "up to date" in out and "yes" in out

    assert _run(empty_db_url, "admin", "create-visit", "bi23047-5", "--microscope", "m02")[0] == 0
    assert _run(empty_db_url, "admin", "add-person", "alice", "--given-name", "Alice")[0] == 0
    assert _run(empty_db_url, "admin", "add-person", "root")[0] == 0
    code, out = _run(
        empty_db_url, "admin", "add-member", "bi23047-5", "alice", "--role", "Team Leader"
    )
    assert code == 0, out
    assert _run(empty_db_url, "admin", "make-staff", "root")[0] == 0
    code, out = _run(
        empty_db_url, "admin", "set-password", "alice", "--password-stdin", stdin="a-good-pass\n"
    )
    assert code == 0, out

    engine = make_engine(empty_db_url)
    with Session(engine) as session:
        visit = visits.find_visit(session, visit="bi23047-5")
        alice = visits.person_id(session, login="alice")
        root = visits.person_id(session, login="root")
        assert visit is not None
        assert list(session.scalars(visits.visible_session_ids(session, person_id=alice))) == [
            visit
        ]
        assert visits.is_staff(session, person_id=root)
        assert visits.check_password(session, login="alice", password="a-good-pass") == alice
    engine.dispose()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("admin", "create-visit", "not-a-visit"), "is not a visit name"),
        (("admin", "add-member", "bi1-1", "nobody"), "no visit"),
        (("admin", "make-staff", "nobody"), "no person"),
        (("admin", "add-person", "x" * 50), "1 to 45 characters"),
    ],
)
def test_bad_input_gives_a_clear_error_and_changes_nothing(
    sqlite_url: str, args: tuple[str, ...], message: str
) -> None:
    engine = make_engine(sqlite_url)
    with engine.connect() as connection:
        before = connection.execute(sa.text('SELECT count(*) FROM "Person"')).scalar_one()
    code, out = _run(sqlite_url, *args)
    assert code == 2
    assert message in " ".join(out.split())
    with engine.connect() as connection:
        assert connection.execute(sa.text('SELECT count(*) FROM "Person"')).scalar_one() == before
    engine.dispose()


def test_a_missing_config_file_is_a_clear_error(tmp_path: object) -> None:
    result = CliRunner().invoke(build_app(), ["--config", "/no/such.toml", "db", "current"])
    assert result.exit_code == 2
    assert "no such file" in result.output
