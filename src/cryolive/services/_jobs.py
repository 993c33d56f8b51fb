"""How the 3D services run a heavy step: as a job of a :class:`cryolive.jobs.JobRunner` — a
local process by default (the embedded demo), a Slurm job where ``jobs.runner = "slurm"``.

A step is the ``cryolive`` command (``python -m cryolive.cli STEP … --out DIR``); the worker
submits it, waits for it (polling the runner), cancels it past its time or when its run is
stopped (a user's Stop), and keeps its output in ``STEP.log`` beside its results.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from cryolive.db.repo.collections import ended_programs
from cryolive.errors import BadInputError, RetryableError
from cryolive.jobs import FINISHED, JobError, JobRunner, LocalRunner
from cryolive.services._common import sessions_for

log = logging.getLogger(__name__)


class StepFailedError(RetryableError):
    """A 3D step's job ended with an error; its log says why."""

    reason = "3d-step-failed"


class StepCancelledError(Exception):
    """The run the step belongs to was stopped while its job ran: the job is cancelled and
    the work dropped (neither a failure nor a retry)."""


def run_step(
    step: str,
    arguments: Sequence[str],
    *,
    out_dir: Path,
    timeout_s: float,
    runner: JobRunner | None = None,
    poll_s: float = 0.5,
    stopped: Callable[[], bool] | None = None,
    stop_check_s: float = 2.0,
) -> None:
    """Run ``cryolive STEP ARGUMENTS… --out OUT_DIR`` as a job and wait for it.

    Raises
    ------
    StepFailedError
        The job failed, was cancelled, or ran over ``timeout_s`` (then it is cancelled); its
        log is ``OUT_DIR/STEP.log``.
    BadInputError
        ``cryolive STEP`` does not exist in this installation.
    StepCancelledError
        ``stopped()`` (asked every ``stop_check_s`` while the job runs) said the run was
        stopped: the job is cancelled.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = runner if runner is not None else LocalRunner()
    command = [sys.executable, "-m", "cryolive.cli", step, *arguments, "--out", str(out_dir)]
    name = f"cryolive-{step}"
    try:
        job_id = jobs.submit(
            command, name=name, workdir=out_dir, time_limit_s=max(1, int(timeout_s) + 60)
        )
    except JobError as exc:
        raise StepFailedError(f"cryolive {step}: could not be submitted ({exc})") from exc
    deadline = time.monotonic() + timeout_s
    state = jobs.status(job_id)
    next_check = time.monotonic() + stop_check_s
    while state not in FINISHED:
        if stopped is not None and time.monotonic() >= next_check:
            next_check = time.monotonic() + stop_check_s
            if stopped():
                jobs.cancel(job_id)
                _keep_log(out_dir, name, job_id, step)
                raise StepCancelledError(f"cryolive {step}: its run was stopped; job cancelled")
        if time.monotonic() > deadline:
            jobs.cancel(job_id)
            _keep_log(out_dir, name, job_id, step)
            raise StepFailedError(f"cryolive {step}: ran over {timeout_s:.0f} s; job cancelled")
        time.sleep(poll_s)
        state = jobs.status(job_id)
    log = _keep_log(out_dir, name, job_id, step)
    text = log.read_bytes() if log.is_file() else b""
    if state != "done" and b"No such command" in text:
        raise BadInputError(f"cryolive {step}: not a command of this installation")
    if state == "failed" and _usage_error(text):
        # the command refused its input (exit 2): a recorded failure, never a retry loop
        raise BadInputError(f"cryolive {step} refused its input: {_usage_error(text)}; see {log}")
    if state != "done":
        raise StepFailedError(f"cryolive {step}: job {job_id} {state}; see {log}")


def run_stopped(database_url: str | None, program_id: int) -> Callable[[], bool] | None:
    """Whether the run ``program_id`` was stopped (asked of the database each time; ``None``
    without a database). A database that cannot be reached counts as not stopped."""
    if database_url is None:
        return None

    def stopped() -> bool:
        try:
            with sessions_for(database_url)() as session:
                return program_id in ended_programs(session, program_ids=[program_id])
        except Exception:  # the database is away: the job goes on; the writer drops late results
            log.warning("cannot tell whether run %s was stopped", program_id, exc_info=True)
            return False

    return stopped


def _usage_error(text: bytes) -> str:
    """The message of a usage error (typer's "Usage: …" then an error box), or ""."""
    lines = text.decode("utf-8", "replace").splitlines()
    if not any(line.startswith("Usage: ") for line in lines):
        return ""
    said = [line.strip(" │╭╮╰╯─") for line in lines if line.startswith("│")]
    return " ".join(s for s in said if s) or "usage error"


def _keep_log(out_dir: Path, name: str, job_id: str, step: str) -> Path:
    """The job's output (``<name>-<id>.out``) as ``STEP.log`` beside the results."""
    log = out_dir / f"{step}.log"
    output = out_dir / f"{name}-{job_id}.out"
    if output.is_file():
        shutil.copyfile(output, log)
    return log
