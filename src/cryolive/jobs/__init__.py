"""Heavy jobs (3D refinement, post-processing, B-factor series) run outside the worker:
as local subprocesses, or on a Slurm cluster. One protocol, :class:`JobRunner`; pick one with
:func:`make_runner` from the ``jobs`` settings. See docs/jobs.md."""

from __future__ import annotations

from cryolive.config import JobsSettings
from cryolive.jobs._local import LocalRunner
from cryolive.jobs._slurm import MACHINE_FAILURES, SlurmRunner, run_slurm
from cryolive.jobs._types import FINISHED, JobError, JobRunner, JobSpec, JobState


def make_runner(settings: JobsSettings) -> JobRunner:
    """The runner the settings name (``jobs.runner``)."""
    if settings.runner == "slurm":
        return SlurmRunner(
            partition=settings.slurm_partition,
            extra_args=tuple(settings.slurm_extra_args),
            max_resubmits=settings.max_resubmits,
        )
    return LocalRunner()


__all__ = [
    "FINISHED",
    "MACHINE_FAILURES",
    "JobError",
    "JobRunner",
    "JobSpec",
    "JobState",
    "LocalRunner",
    "SlurmRunner",
    "make_runner",
    "run_slurm",
]
