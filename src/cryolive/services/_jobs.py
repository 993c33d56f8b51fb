"""How the 3D services run a heavy step: the one place to swap for a job runner
(``cryolive.jobs``: local processes or Slurm) when it lands.

For now a step is the ``cryolive`` command run as a child process of the worker
(``python -m cryolive.cli STEP …``), its output kept in ``STEP.log`` beside its results.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from cryolive.errors import BadInputError, RetryableError


class StepFailedError(RetryableError):
    """A 3D step's process ended with an error; its log says why."""

    reason = "3d-step-failed"


def run_step(step: str, arguments: Sequence[str], *, out_dir: Path, timeout_s: float) -> None:
    """Run ``cryolive STEP ARGUMENTS… --out OUT_DIR`` and wait for it.

    Raises
    ------
    StepFailedError
        The command failed or ran over ``timeout_s`` (its log is ``OUT_DIR/STEP.log``).
    BadInputError
        ``cryolive STEP`` does not exist in this installation.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    log = out_dir / f"{step}.log"
    command = [sys.executable, "-m", "cryolive.cli", step, *arguments, "--out", str(out_dir)]
    with open(log, "wb") as sink:
        try:
            done = subprocess.run(
                command, stdout=sink, stderr=subprocess.STDOUT, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise StepFailedError(
                f"cryolive {step}: ran over {timeout_s:.0f} s; see {log}"
            ) from exc
    if done.returncode == 2 and b"No such command" in log.read_bytes():
        raise BadInputError(f"cryolive {step}: not a command of this installation")
    if done.returncode != 0:
        raise StepFailedError(f"cryolive {step}: exit status {done.returncode}; see {log}")
