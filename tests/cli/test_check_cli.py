"""``cryolive check`` exits non-zero when work loops (dispatched again and again) or is stuck
(open for long with nothing closing), and zero when work flows."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from cryolive.cli import build_app
from cryolive.db import ledger, make_engine, session_factory, upgrade


def _check(url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), ["check", *args], env={"CRYOLIVE_DATABASE_URL": url})
    return result.exit_code, result.output


def _database(tmp_path: Path) -> tuple[str, sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'check.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    return url, session_factory(engine)


def test_check_passes_when_work_flows_and_fails_when_it_loops_or_is_stuck(
    tmp_path: Path,
) -> None:
    url, sessions = _database(tmp_path)
    now = time.time()
    with sessions.begin() as session:
        ledger.expect(session, items=[("movie:1:a", "motioncorr", b"{}")], now=now - 60)
        ledger.expect(session, items=[("movie:1:b", "motioncorr", b"{}")], now=now - 60)
        ledger.complete(session, keys=["movie:1:b"], now=now - 30)
    code, out = _check(url)
    assert code == 0, out
    assert "open work" in out

    led = ledger.SqlWorkLedger(sessions)
    for _ in range(3):
        led.mark_dispatched("movie:1:a", now=now)  # re-sent again and again: 4 dispatches
    code, out = _check(url)
    assert code == 1 and "looping: movie:1:a" in out

    code, out = _check(url, "--loop-after", "10", "--stuck-after-s", "5")
    assert code == 0, out  # not looping by that measure, and something closed 30 s ago

    with sessions.begin() as session:
        ledger.expect(session, items=[("movie:1:c", "motioncorr", b"{}")], now=now - 7200)
    code, out = _check(url, "--loop-after", "10", "--stuck-after-s", "20")
    assert code == 1 and "stuck: movie:1:c" in out


def test_the_reconciler_closes_the_work_of_a_stopped_run_instead_of_resending_it(
    tmp_path: Path,
) -> None:
    from ispyb.sqlalchemy import AutoProcProgram

    from cryolive.db.models import WorkItem

    _, sessions = _database(tmp_path)
    now = time.time()
    with sessions.begin() as session:
        running, stopped = AutoProcProgram(), AutoProcProgram(processingStatus=0)
        session.add_all([running, stopped])
        session.flush()
        items = [
            (f"movie:{running.autoProcProgramId}:a", "motioncorr", b"{}"),
            (f"movie:{stopped.autoProcProgramId}:b", "motioncorr", b"{}"),
        ]
        ledger.expect(session, items=items, now=now - 3600)
    due = ledger.SqlWorkLedger(sessions).overdue(600, now=now, limit=10)
    assert [w.key for w in due] == [items[0][0]]  # the stopped run's work is not re-sent …
    with sessions() as session:
        closed = session.get(WorkItem, items[1][0])
        assert closed is not None and closed.outcome == "cancelled"  # … but closed
