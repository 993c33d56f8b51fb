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

People's choices count (:func:`cryolive.db.repo.classes.run_selections`): with a database,
each message re-reads the selection of every batch's classification as it stands (a person's
choice of a class over the 2D engine's), so a class deselected after its batch was sent on is
left out of the next run, and a class the engine rejected but a person selected is put in. A
batch whose selection differs from the engine's is gathered from its classification's
``run_data.star`` (every particle, with its class), filtered to the chosen classes.

Redelivered messages change nothing: a planned run stays in the state until it has run, and
its record is sent again with the next message (the writer's upserts absorb it).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import starfile

from cryolive.db.repo.classes import ClassSelection, run_selections
from cryolive.errors import BadInputError
from cryolive.io.layout import job_dir
from cryolive.io.outputs.recon3d import (
    gather_particles,
    read_class3d_outputs,
    read_initial_model_resolution,
)
from cryolive.io.particle_files import read_particle_tables
from cryolive.jobs import JobRunner
from cryolive.messaging.service import Context, Emit, Service
from cryolive.records import (
    AnyRecord,
    Class3DRecord,
    Class3DValues,
    InitialModelValues,
    MovieRef,
)
from cryolive.services._common import RESULTS, sessions_for
from cryolive.services._jobs import StepCancelledError, run_step, run_stopped
from cryolive.services._rules3d import angular_efficiency, class_to_refine, run_due
from cryolive.services._state import claim, locked_state
from cryolive.services.messages import Class3DMessage, Refine3DMessage, WriteResults

REFINE = "refine3d"  # the output the best class is sent on
PER_CLASS = 20  # particles per 3D class the engine asks for (cryolive class3d refuses fewer)
STEP_TIMEOUT_S = 12 * 3600.0

log = logging.getLogger(__name__)

# The selections of a run's 2D classifications as they stand, keyed (batch, latest movie).
Selections = Mapping[tuple[int, str], ClassSelection]
Chosen = Callable[[Class3DMessage], Selections]


def _new() -> dict[str, Any]:
    return {"batches": {}, "runs": [], "emitted": []}


def _follow(batch: int, entry: dict[str, Any], selections: Selections) -> None:
    """Set the batch's ``classes`` (class numbers chosen, None: the engine's selection stands)
    and ``chosen`` (their particles) from the selection of its classification as it stands."""
    found = selections.get((batch, str(entry.get("movie"))))
    if found is None or not found.by_person:
        entry["classes"], entry["chosen"] = None, None
    else:
        entry["classes"], entry["chosen"] = sorted(found.selected), found.selected_particles


def _count(entry: dict[str, Any]) -> int:
    """The particles of a batch that go on: a person's choice over the engine's."""
    return int(entry["selected"] if entry.get("classes") is None else entry["chosen"])


def _data_star(selected_star: str) -> Path:
    """The classification's STAR of every particle beside its selected particles' STAR
    (:func:`cryolive.io.outputs.class2d.write_class2d_outputs`: ``{stem}_data.star``)."""
    path = Path(selected_star)
    suffix = "_selected_data.star"
    if not path.name.endswith(suffix):
        raise BadInputError(f"selected_star: expected a name ending in {suffix}, got {path.name}")
    return path.with_name(path.name[: -len(suffix)] + "_data.star")


def _chosen_star(job: Path, batch: int, entry: dict[str, Any]) -> str:
    """The STAR of the batch's particles that go on: the engine's selected particles, or those
    of the classes a person's choices select, filtered from the classification's data STAR
    into ``job/chosen/`` (written once per classification and set of classes)."""
    classes = entry.get("classes")
    if classes is None:
        return str(entry["star"])
    tag = hashlib.sha1(f"{entry['star']}|{classes}".encode()).hexdigest()[:12]
    out = job / "chosen" / f"batch_{batch:03d}_{tag}.star"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        tables = read_particle_tables([_data_star(entry["star"])], relative_to=out.parent)
        rows = tables.particles
        kept = rows[rows["rlnClassNumber"].astype(int).isin(classes)].reset_index(drop=True)
        partial = out.with_suffix(".part")
        starfile.write({"optics": tables.optics, "particles": kept}, partial, overwrite=True)
        partial.replace(out)
        log.info("batch %d: classes %s as chosen, %d particles", batch, classes, len(kept))
    return str(out)


def _add(state: dict[str, Any], message: Class3DMessage, selections: Selections, job: Path) -> None:
    """Keep the newest selection of the message's batch, follow people's choices on every
    batch; plan a 3D run if one is due."""
    batches = state["batches"]
    key = str(message.batch_number)
    known = batches.get(key)
    if known is None or message.particles_in_batch >= known["particles_in_batch"]:
        batches[key] = {
            "particles_in_batch": message.particles_in_batch,
            "selected": message.selected_particles,
            "star": message.selected_star,
            "movie": message.movie_path,
        }
    for number, entry in batches.items():
        _follow(int(number), entry, selections)
    selected = sum(_count(b) for b in batches.values())
    runs = state["runs"]
    if run_due(selected, [int(r["particles"]) for r in runs], message.class3d):
        runs.append(
            {
                "number": len(runs) + 1,
                "particles": selected,
                "stars": [
                    _chosen_star(job, int(n), b) for n, b in sorted(batches.items()) if _count(b)
                ],
                "movie": message.movie_path,
                "done": False,
            }
        )


def _run(
    job: Path,
    run: dict[str, Any],
    message: Class3DMessage,
    runner: JobRunner | None,
    stopped: Callable[[], bool] | None = None,
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
    engine = ["--engine", settings.engine]
    initial = folder / "InitialModel"
    # the point group goes to every step, so that the maps share its axes (refine3d's too)
    sym = ["--symmetry", settings.symmetry]
    run_step(
        "initial-model",
        [str(star), *sym, *engine],
        out_dir=initial,
        timeout_s=STEP_TIMEOUT_S,
        runner=runner,
        stopped=stopped,
    )
    classified = folder / "Class3D"
    run_step(
        "class3d",
        [
            str(star),
            "--ref",
            str(initial / "initial_model.mrc"),
            "--classes",
            str(n_classes),
            *sym,
            *engine,
        ],
        out_dir=classified,
        timeout_s=STEP_TIMEOUT_S,
        runner=runner,
        stopped=stopped,
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
        refine3d=message.refine3d,
    )


def class3d(
    message: Class3DMessage,
    context: Context,
    *,
    runner: JobRunner | None = None,
    chosen: Chosen | None = None,
    stopped: Callable[[], bool] | None = None,
) -> list[Emit]:
    """Gather the batch's selected particles; run the initial model and 3D classes that are due
    (as jobs of ``runner``: local processes when None). ``chosen``: the selections of the
    run's 2D classifications as they stand (None: the engine's selections). ``stopped``: asked
    while a step's job runs; when the run was stopped the job is cancelled and the rest of the
    work dropped."""
    job = job_dir(message.project_dir, "Class3D", message.program_id)
    selections = {} if chosen is None else chosen(message)
    with locked_state(job, _new) as state:
        again = [Class3DRecord.model_validate(r) for r in state["emitted"]]
        state["emitted"] = []
        _add(state, message, selections, job)
        todo = [dict(r) for r in state["runs"] if not r["done"] and claim(r)]
    records: list[AnyRecord] = list(again)
    refine: list[Refine3DMessage] = []
    for run in todo:
        try:
            record = _run(job, run, message, runner, stopped)
        except StepCancelledError as exc:
            log.info("3D run %d dropped: %s", run["number"], exc)
            break
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


def chosen_in(database_url: str) -> Chosen:
    """The selections of a message's run's 2D classifications, read from the database."""

    def chosen(message: Class3DMessage) -> Selections:
        with sessions_for(database_url)() as session:
            return run_selections(session, program_id=message.program_id)

    return chosen


def class3d_service(
    runner: JobRunner | None = None, database_url: str | None = None
) -> Service[Class3DMessage]:
    """The service; its steps run as jobs of ``runner`` (local processes when None); with a
    database, people's choices of 2D classes decide which particles go on."""
    chosen = None if database_url is None else chosen_in(database_url)

    def handle(message: Class3DMessage, context: Context) -> list[Emit]:
        stopped = run_stopped(database_url, message.program_id)
        return class3d(message, context, runner=runner, chosen=chosen, stopped=stopped)

    return Service("class3d", Class3DMessage, handle)
