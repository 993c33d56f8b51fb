"""Jobs on a Slurm cluster: ``sbatch --parsable`` to submit, ``squeue`` (then ``sacct``, for
jobs the controller has forgotten) for the state, ``scancel``. A job that Slurm ends with
NODE_FAIL or BOOT_FAIL (the machine, not the job, failed) is submitted again, up to
``max_resubmits`` times; its first id keeps naming it."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryolive.jobs._types import JobError, JobSpec, JobState

Run = Callable[[list[str]], str]

# Slurm's job states (squeue %T, sacct State) as ours.
_STATES: dict[str, JobState] = {
    **dict.fromkeys(
        ("PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"),
        "queued",
    ),
    **dict.fromkeys(
        ("RUNNING", "COMPLETING", "SUSPENDED", "STAGE_OUT", "SIGNALING", "STOPPED", "RESIZING"),
        "running",
    ),
    "COMPLETED": "done",
    "CANCELLED": "cancelled",
    **dict.fromkeys(
        ("FAILED", "TIMEOUT", "OUT_OF_MEMORY", "PREEMPTED", "DEADLINE", "SPECIAL_EXIT", "REVOKED"),
        "failed",
    ),
    **dict.fromkeys(("NODE_FAIL", "BOOT_FAIL"), "failed"),
}
MACHINE_FAILURES = frozenset({"NODE_FAIL", "BOOT_FAIL"})


def run_slurm(argv: list[str]) -> str:
    """Run one Slurm command; its stdout. Raises JobError with Slurm's own words."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise JobError(f"{argv[0]}: cannot run it ({exc}); is Slurm installed here?") from exc
    if done.returncode != 0:
        words = (done.stderr or done.stdout).strip()
        raise JobError(f"{shlex.join(argv)}: exit {done.returncode}: {words}")
    return done.stdout


def _time_limit(seconds: int) -> str:
    minutes = -(-seconds // 60)  # Slurm counts whole minutes
    return f"{minutes // 60}:{minutes % 60:02d}:00"


@dataclass
class SlurmRunner:
    """Submits with sbatch; ``partition`` and ``extra_args`` go on every sbatch line."""

    partition: str | None = None
    extra_args: Sequence[str] = ()
    max_resubmits: int = 2
    run: Run = run_slurm
    _specs: dict[str, JobSpec] = field(default_factory=dict)
    _latest: dict[str, str] = field(default_factory=dict)
    _attempts: dict[str, int] = field(default_factory=dict)

    def submit(
        self,
        command: list[str],
        *,
        name: str,
        workdir: Path,
        cpus: int = 1,
        memory_mb: int = 2048,
        time_limit_s: int = 3600,
    ) -> str:
        spec = JobSpec(tuple(command), name, Path(workdir).resolve(), cpus, memory_mb, time_limit_s)
        job_id = self._sbatch(spec)
        self._attempts[job_id] = 0
        return job_id

    def _sbatch(self, spec: JobSpec) -> str:
        argv = [
            "sbatch", "--parsable", f"--job-name={spec.name}", f"--chdir={spec.workdir}",
            f"--output={spec.workdir / spec.name}-%j.out", f"--cpus-per-task={spec.cpus}",
            f"--mem={spec.memory_mb}M", f"--time={_time_limit(spec.time_limit_s)}",
            # Slurm must not requeue by itself: resubmission is ours, so it is counted
            "--no-requeue",
        ]  # fmt: skip
        if self.partition:
            argv.append(f"--partition={self.partition}")
        argv += [*self.extra_args, f"--wrap={shlex.join(spec.command)}"]
        out = self.run(argv).strip()
        job_id = out.split(";")[0]  # "id" or "id;cluster"
        if not job_id.isdigit():
            raise JobError(f"sbatch answered {out!r}, not a job id")
        self._specs[job_id] = spec
        return job_id

    def latest_id(self, job_id: str) -> str:
        """The id of the job's latest attempt (itself unless it was submitted again)."""
        while job_id in self._latest:
            job_id = self._latest[job_id]
        return job_id

    def slurm_state(self, job_id: str) -> str:
        """Slurm's own state word for the job's latest attempt (e.g. NODE_FAIL)."""
        current = self.latest_id(job_id)
        try:
            out = self.run(["squeue", "-h", "-t", "all", "-j", current, "-o", "%T"]).split()
        except JobError as exc:
            if "Invalid job id" not in str(exc):
                raise
            out = []
        if not out:
            # the controller has forgotten it (after MinJobAge): ask the accounting
            try:
                answer = self.run(["sacct", "-n", "-X", "-P", "-j", current, "-o", "State"])
            except JobError as exc:
                raise JobError(
                    f"job {job_id}: the controller no longer knows job {current}, and sacct "
                    f"cannot say ({exc})"
                ) from exc
            out = [r.split()[0] for r in answer.split("\n") if r.strip()]
        if not out:
            raise JobError(f"job {job_id}: Slurm knows no job {current}")
        return out[0].rstrip("+")

    def status(self, job_id: str) -> JobState:
        state = self.slurm_state(job_id)
        if state in MACHINE_FAILURES:
            first = self._first(job_id)
            if self._attempts.get(first, self.max_resubmits) < self.max_resubmits:
                self.resubmit(job_id)
                return "queued"
        if state not in _STATES:
            raise JobError(f"job {job_id}: unknown Slurm state {state!r}")
        return _STATES[state]

    def _first(self, job_id: str) -> str:
        for first, later in list(self._latest.items()):
            if later == job_id:
                return self._first(first)
        return job_id

    def cancel(self, job_id: str) -> None:
        self.run(["scancel", self.latest_id(job_id)])

    def resubmit(self, job_id: str) -> str:
        current = self.latest_id(job_id)
        spec = self._specs.get(current)
        if spec is None:
            raise JobError(f"job {job_id}: not submitted by this runner, so not known to resubmit")
        new_id = self._sbatch(spec)
        self._latest[current] = new_id
        first = self._first(current)
        self._attempts[first] = self._attempts.get(first, 0) + 1
        return new_id
