"""A user's Stop reaches a 3D step whose job is running: the job is cancelled (its process
gone), the work dropped — not left running for hours, not recorded as a failure."""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cryolive.db import make_engine, session_factory, upgrade
from cryolive.db.repo import collections, visits
from cryolive.jobs import LocalRunner
from cryolive.services import class3d as class3d_module
from cryolive.services import refine3d as refine3d_module
from cryolive.services._jobs import StepCancelledError, run_step, run_stopped
from tests.services.test_live3d import CONTEXT, _message, _split, fake3d, selections

__all__ = ["selections"]  # the module fixture, shared


class _Sleeper(LocalRunner):
    """A local runner whose jobs sleep a minute instead of running the cryolive step."""

    def submit(self, command: list[str], **kwargs: object) -> str:  # type: ignore[override]
        return super().submit([sys.executable, "-c", "import time; time.sleep(60)"], **kwargs)  # type: ignore[arg-type]


def test_a_stopped_run_cancels_its_running_job(tmp_path: Path) -> None:
    runner = _Sleeper()
    asked: list[float] = []

    def stopped() -> bool:
        asked.append(time.monotonic())
        return len(asked) >= 2  # stopped while the job runs

    start = time.monotonic()
    with pytest.raises(StepCancelledError, match="stopped"):
        run_step(
            "refine3d", [], out_dir=tmp_path, timeout_s=600, runner=runner,
            poll_s=0.1, stopped=stopped, stop_check_s=0.3,
        )  # fmt: skip
    assert time.monotonic() - start < 20  # not the minute the job would have run
    (job_id,) = runner._jobs
    assert runner.status(job_id) == "cancelled"
    assert runner._jobs[job_id].process.poll() is not None  # the process is gone


def test_a_running_run_lets_its_job_finish(tmp_path: Path) -> None:
    class Quick(LocalRunner):
        def submit(self, command: list[str], **kwargs: object) -> str:  # type: ignore[override]
            return super().submit([sys.executable, "-c", "print('ok')"], **kwargs)  # type: ignore[arg-type]

    runner = Quick()
    run_step(
        "refine3d", [], out_dir=tmp_path, timeout_s=60, runner=runner,
        poll_s=0.05, stopped=lambda: False, stop_check_s=0.01,
    )  # fmt: skip
    (job_id,) = runner._jobs
    assert runner.status(job_id) == "done"


def test_run_stopped_follows_the_run_in_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cryolive.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    sessions = session_factory(engine)
    with sessions.begin() as db:
        session_id = visits.ensure_visit(db, visit="bi1-1", microscope="m02")
        _, dc = collections.register_data_collection(
            db,
            spec=collections.DataCollectionSpec(
                session_id=session_id, image_directory="/visit/raw", file_template="*.tiff"
            ),
        )
        _, program = collections.register_processing_job(
            db, data_collection_id=dc, recipe="spa-preprocess", request_key="auto", parameters={}
        )
    assert run_stopped(None, program) is None  # no database: nothing to ask
    stopped = run_stopped(url, program)
    assert stopped is not None and stopped() is False
    with sessions.begin() as db:
        collections.finish_program(
            db, auto_proc_program_id=program, success=False, message="stopped by a user",
            when=dt.datetime(2026, 12, 7),
        )  # fmt: skip
    assert stopped() is True


def test_the_3d_services_drop_the_work_of_a_stopped_run(
    selections: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The services hand their ``stopped`` to every step; a cancelled step sends nothing on
    (no record, no refinement), and is not a failure (no exception reaches the worker)."""
    seen: list[object] = []

    def cancelled_step(step: str, arguments: list[str], **kwargs: object) -> None:
        seen.append(kwargs.get("stopped"))
        raise StepCancelledError(f"cryolive {step}: its run was stopped; job cancelled")

    monkeypatch.setattr(class3d_module, "run_step", cancelled_step)
    monkeypatch.setattr(refine3d_module, "run_step", cancelled_step)

    def stop() -> bool:
        return True

    emits: list[object] = []
    for batch, star in enumerate(selections[:2], start=1):  # 160 particles: a 3D run is due
        emits += class3d_module.class3d(_message(tmp_path, star, batch), CONTEXT, stopped=stop)
    assert seen == [stop] and emits == []
    # a refinement due (its class from a 3D run with the stand-in commands), then stopped
    monkeypatch.setattr(class3d_module, "run_step", fake3d.run_step)
    done: list[Any] = []
    for batch, star in enumerate(selections[:2], start=1):
        done += class3d_module.class3d(_message(tmp_path / "b", star, batch), CONTEXT)
    (refine, *_) = _split(done)[1]
    assert refine3d_module.refine3d(refine, CONTEXT, stopped=stop) == []
    assert seen == [stop, stop]
