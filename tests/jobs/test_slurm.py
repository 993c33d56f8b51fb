"""SlurmRunner on a real single-node Slurm (``.ci/slurm-up``): a job that writes a file is done,
a cancelled one cancelled, a failing one failed, and one whose node fails under it (``scontrol
update state=down``, a real NODE_FAIL) is submitted again and done once the node is back."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from cryolive.jobs import FINISHED, JobState, SlurmRunner


def _wait(runner: SlurmRunner, job_id: str, states: set[str], timeout_s: float = 60) -> JobState:
    end = time.monotonic() + timeout_s
    while (state := runner.status(job_id)) not in states:
        assert time.monotonic() < end, f"job {job_id} still {state}"
        time.sleep(0.25)
    return state


def _node(node: str, state: str) -> None:
    subprocess.run(
        ["scontrol", "update", f"nodename={node}", f"state={state}", "reason=cryolive-test"],
        capture_output=True, check=False, timeout=30,
    )  # fmt: skip


def _wait_idle(node: str, timeout_s: float = 60) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        out = subprocess.run(
            ["sinfo", "-h", "-n", node, "-o", "%T"], capture_output=True, text=True, check=False
        ).stdout
        if out.strip().rstrip("*") in ("idle", "mixed"):
            return
        _node(node, "resume")
        time.sleep(0.5)
    raise AssertionError(f"node {node} did not come back")


def test_job_writes_a_file_and_is_done(slurm_cluster: str, tmp_path: Path) -> None:
    runner = SlurmRunner()
    job = runner.submit(["sh", "-c", "echo written > out.txt"], name="write", workdir=tmp_path)
    assert _wait(runner, job, set(FINISHED)) == "done"
    assert (tmp_path / "out.txt").read_text() == "written\n"
    assert (tmp_path / f"write-{job}.out").is_file()


def test_cancel_a_sleeping_job(slurm_cluster: str, tmp_path: Path) -> None:
    runner = SlurmRunner()
    job = runner.submit(["sleep", "300"], name="sleep", workdir=tmp_path)
    _wait(runner, job, {"queued", "running"})
    runner.cancel(job)
    assert _wait(runner, job, set(FINISHED)) == "cancelled"


def test_failing_command_is_failed(slurm_cluster: str, tmp_path: Path) -> None:
    runner = SlurmRunner()
    job = runner.submit(["sh", "-c", "exit 3"], name="fail", workdir=tmp_path)
    assert _wait(runner, job, set(FINISHED)) == "failed"
    assert runner.slurm_state(job) == "FAILED"


def test_node_failure_resubmits_after_the_node_returns(slurm_cluster: str, tmp_path: Path) -> None:
    runner = SlurmRunner(max_resubmits=1)
    # the first attempt waits (for the node to fail under it); the second finishes at once
    script = "if [ -e first ]; then echo again > second; else touch first; sleep 120; fi"
    job = runner.submit(["sh", "-c", script], name="nodefail", workdir=tmp_path)
    try:
        _wait(runner, job, {"running"})
        end = time.monotonic() + 30
        while not (tmp_path / "first").exists():
            assert time.monotonic() < end, "the first attempt never started its command"
            time.sleep(0.2)
        _node(slurm_cluster, "down")
        end = time.monotonic() + 60
        while runner.slurm_state(job) != "NODE_FAIL":
            assert time.monotonic() < end, f"no NODE_FAIL: {runner.slurm_state(job)}"
            time.sleep(0.25)
        assert runner.status(job) == "queued"  # seen NODE_FAIL: submitted again
        retry = runner.latest_id(job)
        assert retry != job
    finally:
        _wait_idle(slurm_cluster)
    assert _wait(runner, job, set(FINISHED)) == "done"
    assert (tmp_path / "second").read_text() == "again\n"
    assert runner.slurm_state(job) == "COMPLETED"  # of the latest attempt
