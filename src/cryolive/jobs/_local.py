"""Jobs as subprocesses of this process (the default, and the embedded demo's)."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryolive.jobs._types import JobError, JobSpec, JobState


@dataclass
class _Attempt:
    spec: JobSpec
    process: subprocess.Popen[bytes]
    started: float
    cancelled: bool = False
    timed_out: bool = False


@dataclass
class LocalRunner:
    """Runs each job at once as a subprocess in its own session (so cancel stops its children).

    ``cpus`` becomes ``OMP_NUM_THREADS`` for the job; ``memory_mb`` is not enforced;
    ``time_limit_s`` is: a job past it is killed when its status is asked, and counts as failed.
    """

    _jobs: dict[str, _Attempt] = field(default_factory=dict)
    _latest: dict[str, str] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

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
        spec = JobSpec(tuple(command), name, Path(workdir), cpus, memory_mb, time_limit_s)
        return self._start(spec)

    def _start(self, spec: JobSpec) -> str:
        job_id = f"local-{os.getpid()}-{next(self._ids)}"
        env = {**os.environ, "OMP_NUM_THREADS": str(spec.cpus), "CRYOLIVE_JOB_ID": job_id}
        log = spec.workdir / f"{spec.name}-{job_id}.out"
        try:
            with open(log, "wb") as out:
                process = subprocess.Popen(
                    list(spec.command), cwd=spec.workdir, stdout=out, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, env=env, start_new_session=True,
                )  # fmt: skip
        except OSError as exc:
            raise JobError(f"cannot start {spec.command[0]!r} for job {spec.name}: {exc}") from exc
        self._jobs[job_id] = _Attempt(spec, process, time.monotonic())
        return job_id

    def _attempt(self, job_id: str) -> tuple[str, _Attempt]:
        current = job_id
        while current in self._latest:
            current = self._latest[current]
        if current not in self._jobs:
            raise JobError(f"job {job_id}: not submitted by this runner")
        return current, self._jobs[current]

    def status(self, job_id: str) -> JobState:
        _, job = self._attempt(job_id)
        code = job.process.poll()
        if code is None:
            if time.monotonic() - job.started > job.spec.time_limit_s:
                job.timed_out = True
                self._kill(job)
                return "failed"
            return "running"
        if job.cancelled:
            return "cancelled"
        if job.timed_out or code != 0:
            return "failed"
        return "done"

    def _kill(self, job: _Attempt) -> None:
        try:
            os.killpg(job.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            job.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(job.process.pid, signal.SIGKILL)
            job.process.wait()

    def cancel(self, job_id: str) -> None:
        _, job = self._attempt(job_id)
        if job.process.poll() is None:
            job.cancelled = True
            self._kill(job)

    def resubmit(self, job_id: str) -> str:
        current, job = self._attempt(job_id)
        if job.process.poll() is None:
            raise JobError(f"job {job_id}: still running; cancel it before submitting it again")
        new_id = self._start(job.spec)
        self._latest[current] = new_id
        return new_id
