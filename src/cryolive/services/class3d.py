"""Live 3D: the particles of the selected 2D classes feed an initial model and a 3D
classification, first at ``class3d.first_particles`` selected particles and again each time
their count has grown ``class3d.growth``-fold (:class:`cryolive.params.Class3DParameters`).

Every 2D classification of a batch sends here where its selected particles are
(:class:`Class3DTrigger`, via the recipe). The service keeps, in the run's
``Class3D/jobNNN/state.json`` (under a file lock), the newest selection of each batch (a
batch classified again replaces its earlier selection) and the 3D runs made. A due run
gathers the selected particles into one ``particles.star``, windowed to the box and
downscaled to the pixel of :func:`cryolive.io.outputs.recon3d.box_for_3d`, runs
``cryolive initial-model`` then ``cryolive class3d`` through :func:`run_step` (the job
runner's place), reads the classes back and sends a :class:`Class3DRecord` to the writer. The
best class goes on to refinement (``refine3d`` output) when it is good enough
(:func:`class_to_refine`).

Redelivered messages change nothing: a planned run stays in the state until it has run, and
its record is sent again with the next message (the writer's upserts absorb it).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from cryolive.io.layout import job_dir
from cryolive.io.outputs.recon3d import (
    gather_particles,
    read_class3d_outputs,
    read_initial_model_resolution,
)
from cryolive.jobs import JobRunner
from cryolive.messaging.service import Context, Emit, Service
from cryolive.records import (
    AnyRecord,
    Class3DRecord,
    Class3DValues,
    InitialModelValues,
    MovieRef,
)
from cryolive.services._common import RESULTS
from cryolive.services._jobs import run_step
from cryolive.services._rules3d import angular_efficiency, class_to_refine, run_due
from cryolive.services._state import claim, locked_state
from cryolive.services.messages import Class3DMessage, Refine3DMessage, WriteResults

REFINE = "refine3d"  # the output the best class is sent on
PER_CLASS = 20  # particles per 3D class the engine asks for (cryolive class3d refuses fewer)
STEP_TIMEOUT_S = 12 * 3600.0

log = logging.getLogger(__name__)


def _new() -> dict[str, Any]:
    return {"batches": {}, "runs": [], "emitted": []}


def _add(state: dict[str, Any], message: Class3DMessage) -> None:
    """Keep the newest selection of the message's batch; plan a 3D run if one is due."""
    batches = state["batches"]
    key = str(message.batch_number)
    known = batches.get(key)
    if known is None or message.particles_in_batch >= known["particles_in_batch"]:
        batches[key] = {
            "particles_in_batch": message.particles_in_batch,
            "selected": message.selected_particles,
            "star": message.selected_star,
        }
    selected = sum(int(b["selected"]) for b in batches.values())
    runs = state["runs"]
    if run_due(selected, [int(r["particles"]) for r in runs], message.class3d):
        runs.append(
            {
                "number": len(runs) + 1,
                "particles": selected,
                "stars": [b["star"] for _, b in sorted(batches.items()) if b["selected"]],
                "movie": message.movie_path,
                "done": False,
            }
        )


def _run(
    job: Path, run: dict[str, Any], message: Class3DMessage, runner: JobRunner | None
) -> Class3DRecord:
    """Gather the particles, make the initial model, classify; the run's record."""
    folder = job / f"run_{run['number']:03d}"
    settings = message.class3d
    star, particles, box = gather_particles(
        [Path(s) for s in run["stars"]],
        folder,
        diameter_a=message.particle_diameter_a,
        box_factor=settings.box_factor,
        max_pixel_a=settings.max_pixel_a,
    )
    log.info(
        "3D run %d: %d particles, box %d px (window %d px), %.2f Å/px",
        run["number"],
        particles,
        box.box_px,
        box.window_px,
        box.pixel_size_a,
    )
    # the 3D classification needs PER_CLASS particles per class: fewer classes, not a failure
    n_classes = max(1, min(settings.classes, particles // PER_CLASS))
    initial = folder / "InitialModel"
    run_step("initial-model", [str(star)], out_dir=initial, timeout_s=STEP_TIMEOUT_S, runner=runner)
    classified = folder / "Class3D"
    run_step(
        "class3d",
        [
            str(star),
            "--ref",
            str(initial / "initial_model.mrc"),
            "--classes",
            str(n_classes),
        ],
        out_dir=classified,
        timeout_s=STEP_TIMEOUT_S,
        runner=runner,
    )
    classes = read_class3d_outputs(classified)
    values = [
        Class3DValues(
            class_number=c.class_number,
            map_full_path=str(c.map_path),
            particles=c.particles,
            distribution=c.distribution,
            resolution_a=c.resolution_a,
            completeness=c.completeness,
            rotation_accuracy_deg=c.rotation_accuracy_deg,
            translation_accuracy_a=c.translation_accuracy_a,
            angular_efficiency=angular_efficiency(c.angles_deg),
        )
        for c in classes
    ]
    chosen = class_to_refine(values, message.refine3d)
    values = [v.model_copy(update={"selected": v.class_number == chosen}) for v in values]
    return Class3DRecord(
        movie=MovieRef(data_collection_id=message.data_collection_id, movie_full_path=run["movie"]),
        auto_proc_program_id=message.program_id,
        run_number=run["number"],
        particles=particles,
        symmetry=settings.symmetry,
        binned_pixel_size_a=box.pixel_size_a,
        initial_model=InitialModelValues(
            particles=particles, resolution_a=read_initial_model_resolution(initial)
        ),
        classes=values,
    )


def _refine_message(
    record: Class3DRecord, message: Class3DMessage, job: Path
) -> Refine3DMessage | None:
    chosen = next((c for c in record.classes if c.selected), None)
    if chosen is None:
        return None
    return Refine3DMessage(
        data_collection_id=message.data_collection_id,
        program_id=message.program_id,
        project_dir=message.project_dir,
        movie_path=record.movie.movie_full_path,
        run_number=record.run_number,
        class_number=chosen.class_number,
        class_map=chosen.map_full_path,
        class3d_data_star=str(job / f"run_{record.run_number:03d}" / "Class3D" / "run_data.star"),
        particles=max(1, chosen.particles),
        symmetry=record.symmetry,
    )


def class3d(
    message: Class3DMessage, context: Context, *, runner: JobRunner | None = None
) -> list[Emit]:
    """Gather the batch's selected particles; run the initial model and 3D classes that are due
    (as jobs of ``runner``: local processes when None)."""
    job = job_dir(message.project_dir, "Class3D", message.program_id)
    with locked_state(job, _new) as state:
        again = [Class3DRecord.model_validate(r) for r in state["emitted"]]
        state["emitted"] = []
        _add(state, message)
        todo = [dict(r) for r in state["runs"] if not r["done"] and claim(r)]
    records: list[AnyRecord] = list(again)
    refine: list[Refine3DMessage] = []
    for run in todo:
        record = _run(job, run, message, runner)
        records.append(record)
        follow = _refine_message(record, message, job)
        if follow is not None:
            refine.append(follow)
        with locked_state(job, _new) as state:
            for r in state["runs"]:
                if r["number"] == run["number"]:
                    r["done"] = True
            state["emitted"].append(record.model_dump(mode="json"))
    emits = [Emit(REFINE, m) for m in refine]
    if records:
        emits.append(Emit(RESULTS, WriteResults(records=records)))
    return emits


def class3d_service(runner: JobRunner | None = None) -> Service[Class3DMessage]:
    """The service; its steps run as jobs of ``runner`` (local processes when None)."""

    def handle(message: Class3DMessage, context: Context) -> list[Emit]:
        return class3d(message, context, runner=runner)

    return Service("class3d", Class3DMessage, handle)
