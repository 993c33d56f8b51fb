"""Refinement of the best class of a live 3D run, then its postprocessing.

The class's particles (its rows of the 3D classification's ``run_data.star``) go to
``Refine3D/jobNNN/run_NNN_classNNN/particles.star``; ``cryolive refine3d`` refines them from
the class's map (``Refine/``: refined map, half maps, run_data.star, fsc.star) and
``cryolive postprocess`` masks and sharpens (``PostProcess/``: postprocess.mrc, mask.mrc,
postprocess.star), both through :func:`run_step`. The resolution of each refinement is kept
in ``Refine3D/jobNNN/state.json``: the record carries every refinement's (particles,
resolution) so far, the points of the Rosenthal-Henderson plot (BFactorFit rows).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import starfile
from numpy.typing import NDArray

from cryolive.engines.recon3d import euler_to_matrix, matrix_to_euler
from cryolive.engines.refine3d import symmetry_rotations
from cryolive.io.layout import job_dir
from cryolive.io.maps import read_map
from cryolive.io.outputs.recon3d import FscCurves, read_angles, read_fsc
from cryolive.io.particle_files import read_particle_tables
from cryolive.jobs import JobRunner
from cryolive.messaging.service import Context, Emit, Service
from cryolive.records import BFactorPoint, MovieRef, RefinementRecord
from cryolive.services._common import RESULTS
from cryolive.services._jobs import StepCancelledError, StepFailedError, run_step, run_stopped
from cryolive.services._rules3d import angular_efficiency
from cryolive.services._state import claim, locked_state
from cryolive.services.messages import Refine3DMessage, WriteResults

STEP_TIMEOUT_S = 12 * 3600.0
FSC_THRESHOLD = 0.143

log = logging.getLogger(__name__)


def _new() -> dict[str, Any]:
    return {"done": {}, "points": {}, "claims": {}}


def _particles(message: Refine3DMessage, folder: Path) -> Path:
    """The class's particles, their stacks relative to ``folder``."""
    tables = read_particle_tables([Path(message.class3d_data_star)], relative_to=folder)
    rows = tables.particles
    rows = rows[rows["rlnClassNumber"] == message.class_number].drop(columns=["rlnClassNumber"])
    if len(rows) == 0:
        raise StepFailedError(
            f"class {message.class_number}: no particles in {message.class3d_data_star}"
        )
    star = folder / "particles.star"
    starfile.write(
        {"optics": tables.optics, "particles": rows.reset_index(drop=True)}, star, overwrite=True
    )
    return star


def _resolution(curves: FscCurves) -> float:
    """The final resolution of a postprocess.star, or where its best FSC first falls below
    0.143."""
    if curves.final_resolution_a:
        return float(curves.final_resolution_a)
    for name in ("corrected", "masked", "half_maps", "unmasked"):
        fsc = curves.curves.get(name)
        if fsc:
            for s, value in zip(curves.resolution_per_a[1:], fsc[1:], strict=False):
                if value < FSC_THRESHOLD and s > 0:
                    return 1.0 / s
            return 1.0 / max(curves.resolution_per_a[-1], 1e-6)
    raise StepFailedError("postprocess.star: no final resolution and no FSC curve")


def _refine(
    job: Path,
    message: Refine3DMessage,
    runner: JobRunner | None,
    stopped: Callable[[], bool] | None = None,
) -> tuple[int, float, Path, float | None]:
    folder = job / f"run_{message.run_number:03d}_class{message.class_number:03d}"
    folder.mkdir(parents=True, exist_ok=True)
    star = _particles(message, folder)
    refine, post = folder / "Refine", folder / "PostProcess"
    settings = message.refine3d
    engine = ["--engine", settings.engine]
    run_step(
        "refine3d",
        [
            str(star),
            "--ref",
            message.class_map,
            "--symmetry",
            message.symmetry,
            "--iterations",
            str(settings.max_iterations),
            *engine,
        ],
        out_dir=refine,
        timeout_s=STEP_TIMEOUT_S,
        runner=runner,
        stopped=stopped,
    )
    run_step(
        "postprocess",
        [str(refine / "half1.mrc"), str(refine / "half2.mrc"), *engine],
        out_dir=post,
        timeout_s=STEP_TIMEOUT_S,
        runner=runner,
        stopped=stopped,
    )
    resolution = _resolution(read_fsc(post / "postprocess.star"))
    angles = read_angles(refine / "run_data.star")
    log.info(
        "refinement of run %d class %d: %d particles, %.2f Å",
        message.run_number,
        message.class_number,
        len(angles),
        resolution,
    )
    views = symmetry_expanded(angles, message.symmetry)
    return len(angles), resolution, post / "postprocess.mrc", angular_efficiency(views)


def symmetry_expanded(angles_deg: NDArray[np.floating], symmetry: str) -> NDArray[np.float64]:
    """Every particle's |G| equivalent orientations (rot, tilt, psi): a symmetric refinement
    writes its angles in the asymmetric unit, whose views alone would read as a poor spread."""
    try:
        group = symmetry_rotations(symmetry)
    except ValueError:
        group = np.eye(3)[None]
    if len(group) == 1:
        return np.asarray(angles_deg, dtype=np.float64)
    a = euler_to_matrix(np.asarray(angles_deg, dtype=np.float64).reshape(-1, 3))
    return matrix_to_euler(np.einsum("nij,gjk->ngik", a, group).reshape(-1, 3, 3))


def refine3d(
    message: Refine3DMessage,
    context: Context,
    *,
    runner: JobRunner | None = None,
    stopped: Callable[[], bool] | None = None,
) -> list[Emit]:
    """Refine and post-process one class (as jobs of ``runner``), unless another worker is at
    it; ``stopped``: asked while a job runs — a stopped run's job is cancelled, nothing sent."""
    job = job_dir(message.project_dir, "Refine3D", message.program_id)
    key = f"{message.run_number}/{message.class_number}"
    with locked_state(job, _new) as state:
        done = state["done"].get(key)
        mine = done is None and claim(state["claims"].setdefault(key, {}))
    if done is None and not mine:
        return []  # another worker is refining it
    if done is None:
        try:
            particles, resolution, path, efficiency = _refine(job, message, runner, stopped)
        except StepCancelledError as exc:
            log.info("refinement %s dropped: %s", key, exc)
            return []
        with locked_state(job, _new) as state:
            state["points"][str(particles)] = resolution
            done = state["done"][key] = {
                "particles": particles,
                "resolution_a": resolution,
                "map": str(path),
                "angular_efficiency": efficiency,
                "points": dict(state["points"]),
            }
    assert done is not None
    record = RefinementRecord(
        movie=MovieRef(
            data_collection_id=message.data_collection_id, movie_full_path=message.movie_path
        ),
        auto_proc_program_id=message.program_id,
        run_number=message.run_number,
        class_number=message.class_number,
        particles=int(done["particles"]),
        symmetry=message.symmetry,
        pixel_size_a=_pixel(Path(done["map"])),
        map_full_path=done["map"],
        resolution_a=float(done["resolution_a"]),
        angular_efficiency=done["angular_efficiency"],
        bfactor_points=[
            BFactorPoint(particles=int(n), resolution_a=float(r))
            for n, r in sorted(done["points"].items(), key=lambda p: int(p[0]))
        ],
    )
    return [Emit(RESULTS, WriteResults(records=[record]))]


def _pixel(path: Path) -> float:
    return read_map(path)[1] or 1.0


def refine3d_service(
    runner: JobRunner | None = None, database_url: str | None = None
) -> Service[Refine3DMessage]:
    """The service; refinement and post-processing run as jobs of ``runner`` (local when None);
    with a database, a user's Stop cancels the job of a run that is refining."""

    def handle(message: Refine3DMessage, context: Context) -> list[Emit]:
        stopped = run_stopped(database_url, message.program_id)
        return refine3d(message, context, runner=runner, stopped=stopped)

    return Service("refine3d", Refine3DMessage, handle)
