"""``cryolive bfactor --jobs``: each subset's refinement as a ``cryolive refine3d`` job
(:mod:`cryolive.jobs`: local processes or Slurm, as the settings say), all submitted at once."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import starfile
from numpy.typing import NDArray

from cryolive.config import JobsSettings
from cryolive.io.particle_files import ParticleStarTables, write_particles_3d
from cryolive.jobs import FINISHED, JobError, make_runner


class SubsetJobFailed(RuntimeError):
    """A subset's refinement job that did not finish with a result (says which, and its log)."""


def refine_subsets_as_jobs(
    settings: JobsSettings,
    tables: ParticleStarTables,
    order: NDArray[np.int64],
    counts: list[int],
    *,
    ref: Path,
    out: Path,
    refine_args: list[str],
    poll_s: float = 1.0,
    timeout_s: float = 24 * 3600.0,
) -> list[float]:
    """Write each subset's particles.star under ``out/subset_<n>/``, submit ``cryolive refine3d``
    on it, wait for all, and return each subset's resolution (Å) from its fsc.star."""
    runner = make_runner(settings)
    jobs: dict[int, tuple[str, Path]] = {}
    for n in counts:
        folder = out / f"subset_{n}"
        folder.mkdir(parents=True, exist_ok=True)
        star = folder / "particles.star"
        write_particles_3d(star, tables, rows=np.sort(order[:n]))
        command = [
            sys.executable, "-m", "cryolive.cli", "refine3d", str(star.resolve()),
            "--ref", str(ref.resolve()), "--out", str((folder / "refine").resolve()),
            *refine_args,
        ]  # fmt: skip
        job = runner.submit(command, name=f"refine3d_{n}", workdir=folder, cpus=1, memory_mb=2048)
        jobs[n] = (job, folder)
    end = time.monotonic() + timeout_s
    waiting = dict(jobs)
    states: dict[int, str] = {}
    while waiting:
        for n, (job, _folder) in list(waiting.items()):
            state = runner.status(job)
            if state in FINISHED:
                states[n] = state
                del waiting[n]
        if waiting:
            if time.monotonic() > end:
                for job, _folder in waiting.values():
                    runner.cancel(job)
                raise JobError(f"subsets {sorted(waiting)}: not finished in {timeout_s:.0f} s")
            time.sleep(poll_s)
    resolutions = []
    for n in counts:
        job, folder = jobs[n]
        fsc = folder / "refine" / "fsc.star"
        if states[n] != "done" or not fsc.is_file():
            logs = sorted(folder.glob("refine3d_*.out"))
            where = f"; its log: {logs[-1]}" if logs else ""
            raise SubsetJobFailed(f"the refinement of {n} particles (job {job}) {states[n]}{where}")
        general = starfile.read(fsc, always_dict=True)["general"]
        resolutions.append(float(general["rlnFinalResolution"]))
    return resolutions
