"""Find and run a RELION 3.1 program, its output in a log, with a time limit."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from cryolive.errors import InternalError

POLL_S = 0.5
MPI_LAUNCHER = "mpirun"


class Relion3DError(InternalError, RuntimeError):
    """A RELION program failed, ran past its time, or wrote no usable output."""


class RelionMissingError(Relion3DError):
    """A RELION program (or ``mpirun`` for the MPI ones) is not installed."""


def require(executable: str) -> str:
    """The path of ``executable`` on PATH; :class:`RelionMissingError` when there is none."""
    found = shutil.which(executable)
    if found is None:
        raise RelionMissingError(
            f"{executable} is not on PATH (RELION 3.1; Debian: apt-get install relion)"
        )
    return found


def mpi_command(executable: str, processes: int) -> list[str]:
    """``mpirun -n PROCESSES EXECUTABLE`` (oversubscribed: a 2-core machine runs 3 ranks)."""
    program = require(executable)
    return [require(MPI_LAUNCHER), "--oversubscribe", "-n", str(processes), program]


def log_tail(log_path: Path, n_chars: int = 2000) -> str:
    try:
        return log_path.read_text(errors="replace")[-n_chars:]
    except OSError:
        return "(no log)"


def run(
    command: Sequence[str], *, cwd: Path, log_path: Path, timeout_s: float | None = None
) -> None:
    """Run ``command`` in ``cwd`` (RELION resolves image names from there), its output
    appended to ``log_path``; raise :class:`Relion3DError` with the log's tail when it fails
    or runs past ``timeout_s`` (then it is killed)."""
    env = dict(os.environ)
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # Open MPI refuses root without these
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    name = Path(command[0]).name
    start = time.monotonic()
    with log_path.open("a") as log:
        log.write(" ".join(command) + "\n")
        log.flush()
        process = subprocess.Popen(
            list(command), cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=env
        )
        try:
            while process.poll() is None:
                if timeout_s is not None and time.monotonic() - start > timeout_s:
                    raise Relion3DError(
                        f"{name} ran past {timeout_s:g} s; log tail:\n{log_tail(log_path)}"
                    )
                time.sleep(POLL_S)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    if process.returncode != 0:
        raise Relion3DError(
            f"{name} failed (exit {process.returncode}); log tail:\n{log_tail(log_path)}"
        )
