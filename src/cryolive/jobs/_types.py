"""What every job runner shares: the protocol, the states, the job's description, the error."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

JobState = Literal["queued", "running", "done", "failed", "cancelled"]
FINISHED: frozenset[JobState] = frozenset({"done", "failed", "cancelled"})


class JobError(RuntimeError):
    """A job that could not be submitted, queried or cancelled (says which and why)."""


@dataclass(frozen=True)
class JobSpec:
    """One job as submitted: enough to submit it again."""

    command: tuple[str, ...]
    name: str
    workdir: Path
    cpus: int
    memory_mb: int
    time_limit_s: int

    def __post_init__(self) -> None:
        if not self.command:
            raise ValueError("command: empty")
        if not self.name or any(c in self.name for c in "/\\\n\0"):
            raise ValueError(f"name: must be a non-empty name without / or newlines: {self.name!r}")
        if self.cpus < 1:
            raise ValueError(f"cpus: must be at least 1, got {self.cpus}")
        if self.memory_mb < 1:
            raise ValueError(f"memory_mb: must be at least 1, got {self.memory_mb}")
        if self.time_limit_s < 1:
            raise ValueError(f"time_limit_s: must be at least 1, got {self.time_limit_s}")
        if not self.workdir.is_dir():
            raise ValueError(f"workdir: no such folder: {self.workdir}")


class JobRunner(Protocol):
    """Runs commands as jobs. Job ids are strings; a job's output goes to
    ``workdir/<name>-<id>.out`` (stdout and stderr)."""

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
        """Start (or queue) ``command`` in ``workdir``; return the job's id."""
        ...

    def status(self, job_id: str) -> JobState:
        """The job's state now (following resubmissions: the state of its latest attempt)."""
        ...

    def cancel(self, job_id: str) -> None:
        """Stop the job (its latest attempt); a finished job is left as it is."""
        ...

    def resubmit(self, job_id: str) -> str:
        """Submit the job again as it was first submitted; return the new attempt's id."""
        ...
