"""SlurmRunner's command lines and state handling against a scripted Slurm (no cluster): the
sbatch line, squeue then sacct, and the resubmission on NODE_FAIL / BOOT_FAIL, counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from cryolive.jobs import JobError, SlurmRunner


class FakeSlurm:
    """Answers Slurm commands from a table of job states; records every command line."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.states: dict[str, str] = {}
        self.next_id = 100
        self.forgotten: set[str] = set()
        self.accounting = True

    def __call__(self, argv: list[str]) -> str:
        self.calls.append(argv)
        if argv[0] == "sbatch":
            self.next_id += 1
            self.states[str(self.next_id)] = "PENDING"
            return f"{self.next_id};cluster\n"
        if argv[0] == "squeue":
            job = argv[argv.index("-j") + 1]
            if job in self.forgotten or job not in self.states:
                # what squeue says (exit 1) of a job the controller does not hold
                raise JobError("squeue: exit 1: slurm_load_jobs error: Invalid job id specified")
            return self.states[job] + "\n"
        if argv[0] == "sacct":
            if not self.accounting:
                raise JobError("sacct: exit 1: Slurm accounting storage is disabled")
            job = argv[argv.index("-j") + 1]
            return f"{self.states[job]} by 0\n" if job in self.states else ""
        if argv[0] == "scancel":
            self.states[argv[1]] = "CANCELLED"
            return ""
        raise AssertionError(argv)


def test_sbatch_line(tmp_path: Path) -> None:
    fake = FakeSlurm()
    runner = SlurmRunner(partition="em", extra_args=("--account=cryo",), run=fake)
    job = runner.submit(
        ["relion_refine", "--o", "run 1"], name="refine", workdir=tmp_path, cpus=4,
        memory_mb=8000, time_limit_s=3601,
    )  # fmt: skip
    assert job == "101"
    argv = fake.calls[0]
    assert argv[:2] == ["sbatch", "--parsable"]
    for arg in (
        "--job-name=refine", f"--chdir={tmp_path.resolve()}", "--cpus-per-task=4", "--mem=8000M",
        "--time=1:01:00", "--no-requeue", "--partition=em", "--account=cryo",
        f"--output={tmp_path.resolve() / 'refine'}-%j.out",
    ):  # fmt: skip
        assert arg in argv, arg
    assert argv[-1] == "--wrap=relion_refine --o 'run 1'"


@pytest.mark.parametrize(
    ("slurm", "ours"),
    [("PENDING", "queued"), ("RUNNING", "running"), ("COMPLETING", "running"),
     ("COMPLETED", "done"), ("FAILED", "failed"), ("TIMEOUT", "failed"),
     ("OUT_OF_MEMORY", "failed"), ("CANCELLED", "cancelled")],
)  # fmt: skip
def test_states(tmp_path: Path, slurm: str, ours: str) -> None:
    fake = FakeSlurm()
    runner = SlurmRunner(run=fake)
    job = runner.submit(["true"], name="j", workdir=tmp_path)
    fake.states[job] = slurm
    assert runner.status(job) == ours


def test_forgotten_job_is_asked_of_sacct(tmp_path: Path) -> None:
    fake = FakeSlurm()
    runner = SlurmRunner(run=fake)
    job = runner.submit(["true"], name="j", workdir=tmp_path)
    fake.states[job] = "CANCELLED"
    fake.forgotten.add(job)
    assert runner.status(job) == "cancelled"
    assert fake.calls[-1][0] == "sacct"
    with pytest.raises(JobError, match="knows no job"):
        runner.status("999")
    fake.accounting = False  # a cluster without slurmdbd
    with pytest.raises(JobError, match=r"no longer knows job .* accounting storage is disabled"):
        runner.status(job)


@pytest.mark.parametrize("failure", ["NODE_FAIL", "BOOT_FAIL"])
def test_machine_failure_resubmits_up_to_the_limit(tmp_path: Path, failure: str) -> None:
    fake = FakeSlurm()
    runner = SlurmRunner(run=fake, max_resubmits=2)
    job = runner.submit(["refine"], name="j", workdir=tmp_path)
    fake.states[job] = failure
    assert runner.status(job) == "queued"  # submitted again
    second = runner.latest_id(job)
    assert second != job and fake.calls[-1][0] == "sbatch"
    fake.states[second] = failure
    assert runner.status(job) == "queued"
    third = runner.latest_id(job)
    fake.states[third] = failure
    assert runner.status(job) == "failed"  # two resubmissions, then it stays failed
    assert sum(c[0] == "sbatch" for c in fake.calls) == 3
    fake.states[third] = "COMPLETED"
    assert runner.status(job) == "done"


def test_job_failure_is_not_resubmitted(tmp_path: Path) -> None:
    fake = FakeSlurm()
    runner = SlurmRunner(run=fake)
    job = runner.submit(["refine"], name="j", workdir=tmp_path)
    fake.states[job] = "FAILED"
    assert runner.status(job) == "failed"
    assert sum(c[0] == "sbatch" for c in fake.calls) == 1


def test_cancel_and_errors(tmp_path: Path) -> None:
    fake = FakeSlurm()
    runner = SlurmRunner(run=fake)
    job = runner.submit(["sleep", "60"], name="j", workdir=tmp_path)
    runner.cancel(job)
    assert fake.calls[-1] == ["scancel", job]
    assert runner.status(job) == "cancelled"
    with pytest.raises(JobError, match="not submitted by this runner"):
        runner.resubmit("12345")

    def refusing(argv: list[str]) -> str:
        return "sbatch: error: invalid partition"

    with pytest.raises(JobError, match="not a job id"):
        SlurmRunner(run=refusing).submit(["true"], name="j", workdir=tmp_path)
