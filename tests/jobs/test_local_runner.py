"""LocalRunner: jobs as subprocesses; done, failed, cancelled (with their children), timed
out, resubmitted; bad requests refused."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from cryolive.config import JobsSettings, load_settings
from cryolive.jobs import FINISHED, JobError, JobState, LocalRunner, SlurmRunner, make_runner


def _wait(runner: LocalRunner, job_id: str, timeout_s: float = 20.0) -> JobState:
    end = time.monotonic() + timeout_s
    while (state := runner.status(job_id)) not in FINISHED:
        assert time.monotonic() < end, f"job {job_id} still {state}"
        time.sleep(0.05)
    return state


def test_job_runs_in_its_folder_and_is_done(tmp_path: Path) -> None:
    runner = LocalRunner()
    code = "import os; open('out.txt', 'w').write(os.environ['OMP_NUM_THREADS']); print('hi')"
    job = runner.submit([sys.executable, "-c", code], name="write", workdir=tmp_path, cpus=3)
    assert _wait(runner, job) == "done"
    assert (tmp_path / "out.txt").read_text() == "3"
    assert (tmp_path / f"write-{job}.out").read_text().strip() == "hi"


def test_failing_command_is_failed(tmp_path: Path) -> None:
    runner = LocalRunner()
    job = runner.submit([sys.executable, "-c", "raise SystemExit(3)"], name="f", workdir=tmp_path)
    assert _wait(runner, job) == "failed"


def test_cancel_stops_the_job_and_its_children(tmp_path: Path) -> None:
    runner = LocalRunner()
    job = runner.submit(
        ["sh", "-c", "sleep 30 & sleep 30; touch late"], name="sleep", workdir=tmp_path
    )
    assert runner.status(job) == "running"
    runner.cancel(job)
    assert runner.status(job) == "cancelled"
    time.sleep(0.3)
    assert not (tmp_path / "late").exists()


def test_time_limit_fails_the_job(tmp_path: Path) -> None:
    runner = LocalRunner()
    job = runner.submit(["sleep", "30"], name="slow", workdir=tmp_path, time_limit_s=1)
    time.sleep(1.2)
    assert runner.status(job) == "failed"


def test_resubmit_runs_again_and_the_first_id_follows(tmp_path: Path) -> None:
    runner = LocalRunner()
    cmd = ["sh", "-c", "echo x >> runs; test $(wc -l < runs) -ge 2"]
    job = runner.submit(cmd, name="again", workdir=tmp_path)
    assert _wait(runner, job) == "failed"
    again = runner.resubmit(job)
    assert again != job
    assert _wait(runner, job) == "done"  # the first id names the latest attempt
    assert (tmp_path / "runs").read_text().count("x") == 2


def test_bad_requests_are_refused(tmp_path: Path) -> None:
    runner = LocalRunner()
    with pytest.raises(ValueError, match="workdir"):
        runner.submit(["true"], name="x", workdir=tmp_path / "absent")
    with pytest.raises(ValueError, match="cpus"):
        runner.submit(["true"], name="x", workdir=tmp_path, cpus=0)
    with pytest.raises(ValueError, match="name"):
        runner.submit(["true"], name="../x", workdir=tmp_path)
    with pytest.raises(ValueError, match="command"):
        runner.submit([], name="x", workdir=tmp_path)
    with pytest.raises(JobError, match="cannot start"):
        runner.submit([str(tmp_path / "no-such-program")], name="x", workdir=tmp_path)
    with pytest.raises(JobError, match="not submitted"):
        runner.status("local-1-999")
    job = runner.submit(["sleep", "30"], name="busy", workdir=tmp_path)
    with pytest.raises(JobError, match="still running"):
        runner.resubmit(job)
    runner.cancel(job)


def test_settings_choose_the_runner() -> None:
    assert isinstance(make_runner(JobsSettings()), LocalRunner)
    slurm = make_runner(
        JobsSettings(runner="slurm", slurm_partition="gpu", slurm_extra_args=["--account=em"])
    )
    assert isinstance(slurm, SlurmRunner)
    assert slurm.partition == "gpu" and tuple(slurm.extra_args) == ("--account=em",)


def test_jobs_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRYOLIVE_JOBS__RUNNER", "slurm")
    monkeypatch.setenv("CRYOLIVE_JOBS__SLURM_EXTRA_ARGS", '["--account=m02", "--gres=gpu:1"]')
    jobs = load_settings().jobs
    assert jobs.runner == "slurm" and jobs.slurm_extra_args == ["--account=m02", "--gres=gpu:1"]
    monkeypatch.setenv("CRYOLIVE_JOBS__RUNNER", "pbs")
    with pytest.raises(ValidationError, match="runner"):
        load_settings()
