"""Streaming 2D classification: particles gathered into batches as micrographs are picked,
each batch classified while it grows, later batches starting from the classes before them.

Every picked micrograph sends its particles here. The service keeps, in the run's
``Class2D/jobNNN/`` folder, which micrographs' particles belong to which batch
(``batches.json``, changed only under a file lock, so several workers may share a run). A
batch fills up to ``class2d.batch_size`` particles (the run's parameters,
:class:`cryolive.params.Class2DParameters`; by default as facilities use); it is classified as
soon as it holds ``min_particles``, and again each time it has grown by ``growth`` since, and
once more when it is full, so that a user sees classes minutes after the first particles and
better ones as the session goes on. A batch after the first is classified starting from the
latest classes of the batch before it, with half the iterations. The number of classes is
``classes``, or fewer while a batch holds under ``particles_per_class`` per class.

Each classification writes ``batch_NNN/nNNNNNNN/`` (class averages as MRC and PNG,
``run_model.star`` with each class's score and selection, ``run_data.star``; see
:mod:`cryolive.io.outputs.class2d`), logs the selection (the rule, and each selected class with
its score and particles) and sends a
ClassificationRecord for the writer. Redelivered messages change nothing: a micrograph is
added once, a planned classification is kept in the state until it has run, and its record is
sent twice (now, and with the next message), which the writer's upserts absorb, so a crash
between classifying and sending loses nothing.

Only accepted exposures count (exposure curation, :mod:`cryolive.db.repo.curation`): when a
batch is classified, the micrographs of movies rejected then (by the collection's thresholds on
this run's results, or by hand) are left out, so a change of thresholds applies to the next
classification without reprocessing anything. A batch fills by the particles picked.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import mrcfile
import numpy as np

from cryolive.config import CurationThresholds
from cryolive.db.repo import curation
from cryolive.engines.class2d import (
    Class2DResult,
    Class2DSettings,
    ParticleSet,
    classify_2d,
    fourier_crop,
)
from cryolive.io.layout import job_dir
from cryolive.io.outputs.class2d import write_class2d_outputs
from cryolive.io.particle_files import read_particle_tables, read_particles_star
from cryolive.messaging.service import Context, Emit, Service
from cryolive.records import AnyRecord, ClassificationRecord, ClassValues, MovieRef
from cryolive.services._common import RESULTS, sessions_for
from cryolive.services._state import claim, locked_state
from cryolive.services.messages import Class2DMessage, Class3DTrigger, WriteResults

WORKING_BOX_PX = 64  # particles are read straight to the engine's working box
CLAIM_S = 3600.0  # how long a claim from another host holds
CLASS3D = "class3d"  # the output each classification's selected particles go out on

log = logging.getLogger(__name__)

# The rejected movies (full paths) among a batch's, for a message of the run.
Rejected = Callable[[Class2DMessage, Sequence[str]], set[str]]


def _new() -> dict[str, Any]:
    return {"batches": [], "seen": [], "pending": [], "emitted": []}


def _locked(folder: Path) -> AbstractContextManager[dict[str, Any]]:
    """The batch state of a run's Class2D job, read and written under an exclusive lock."""
    return locked_state(folder, _new, "batches.json")


def _add(state: dict[str, Any], message: Class2DMessage) -> None:
    """Put a micrograph's particles into the open batch and plan any classification due."""
    if message.movie_stem in state["seen"] or message.particles == 0:
        return
    state["seen"].append(message.movie_stem)
    batches = state["batches"]
    settings = message.class2d
    if not batches or batches[-1]["particles"] >= settings.batch_size:
        batches.append({"number": len(batches) + 1, "stars": [], "particles": 0, "classified": 0})
    batch = batches[-1]
    batch["stars"].append(message.particles_star)
    batch.setdefault("movies", []).append(message.movie_path)
    batch["particles"] += message.particles
    batch["last_movie"] = message.movie_path
    full = batch["particles"] >= settings.batch_size
    grown = batch["particles"] >= max(settings.min_particles, settings.growth * batch["classified"])
    if (grown or full) and batch["particles"] > batch["classified"]:
        batch["classified"] = batch["particles"]
        state["pending"].append(
            {
                "batch": batch["number"],
                "particles": batch["particles"],
                "stars": list(batch["stars"]),
                "movies": list(batch["movies"]),
                "last_movie": batch["last_movie"],
            }
        )


def _key(item: dict[str, Any]) -> tuple[int, int]:
    return (int(item["batch"]), int(item["particles"]))


def _claim(item: dict[str, Any]) -> bool:
    """Take a planned classification unless another live process has taken it (a dead
    process's claim on this host at once; another host's after ``CLAIM_S``)."""
    return claim(item, CLAIM_S)
    return True


def _read_particles(stars: list[str]) -> ParticleSet:
    """The particles of several micrographs, Fourier-cropped to the working box on reading."""
    parts = [read_particles_star(Path(star)) for star in stars]
    box = min(parts[0].box_px, WORKING_BOX_PX) // 2 * 2
    pixel = parts[0].pixel_size_a * parts[0].box_px / box
    images = np.concatenate([fourier_crop(np.asarray(p.images), box) for p in parts])
    return ParticleSet(
        images=images,
        pixel_size_a=pixel,
        defocus_u_a=np.concatenate([p.defocus_u_a for p in parts]),
        defocus_v_a=np.concatenate([p.defocus_v_a for p in parts]),
        astigmatism_angle_deg=np.concatenate([p.astigmatism_angle_deg for p in parts]),
        voltage_kv=parts[0].voltage_kv,
        cs_mm=parts[0].cs_mm,
        amplitude_contrast=parts[0].amplitude_contrast,
    )


def _previous_averages(job: Path, batch: int, n_classes: int) -> np.ndarray | None:
    """The latest class averages of the batch before ``batch``, if they have ``n_classes``."""
    if batch <= 1:
        return None
    runs = sorted((job / f"batch_{batch - 1:03d}").glob("n*/run_classes.mrcs"))
    if not runs:
        return None
    with mrcfile.open(runs[-1], permissive=True) as mrc:
        averages = np.asarray(mrc.data, dtype=np.float32)
    return averages if averages.ndim == 3 and averages.shape[0] == n_classes else None


def _accepted(
    item: dict[str, Any], message: Class2DMessage, rejected: Rejected | None
) -> dict[str, Any] | None:
    """The planned batch without the micrographs of rejected movies (None: nothing is left)."""
    movies = item.get("movies")
    if rejected is None or not movies:  # a state from before curation: every micrograph
        return item
    out = rejected(message, movies)
    if not out:
        return item
    kept = [(s, m) for s, m in zip(item["stars"], movies, strict=True) if m not in out]
    log.info("batch %d: %d rejected micrographs left out", item["batch"], len(movies) - len(kept))
    if not kept:
        return None
    return (
        item
        | {"stars": [s for s, _ in kept], "movies": [m for _, m in kept]}
        | {"last_movie": kept[-1][1]}
    )


def _classify(job: Path, item: dict[str, Any], message: Class2DMessage) -> ClassificationRecord:
    """Classify one planned batch and write its files; the record for the writer."""
    folder = job / f"batch_{item['batch']:03d}" / f"n{item['particles']:08d}"
    particles = _read_particles(item["stars"])
    wanted = message.class2d
    k = max(1, min(wanted.classes, len(particles) // wanted.particles_per_class))
    seed = _previous_averages(job, item["batch"], k)
    settings = Class2DSettings(
        n_classes=k,
        particle_diameter_a=message.mask_diameter_a,
        iterations=wanted.iterations // 2 if seed is not None else wanted.iterations,
        seed=item["batch"],
    )
    started, clock = dt.datetime.now(dt.UTC).replace(tzinfo=None), time.monotonic()
    result = classify_2d(particles, settings, initial_averages=seed)
    took = time.monotonic() - clock
    log.info("batch %d, %d particles: %s", item["batch"], item["particles"], result.selection)
    tables = read_particle_tables([Path(s) for s in item["stars"]], relative_to=folder)
    files = write_class2d_outputs(
        result, folder, particle_rows=tables.particles, optics=tables.optics
    )
    return _record(result, list(files.class_pngs), item, message).model_copy(
        update={"started_at": started, "duration_s": round(took, 3)}
    )


def _record(
    result: Class2DResult,
    images: list[Path],
    item: dict[str, Any],
    message: Class2DMessage,
) -> ClassificationRecord:
    distribution = result.class_distribution
    return ClassificationRecord(
        movie=MovieRef(
            data_collection_id=message.data_collection_id, movie_full_path=item["last_movie"]
        ),
        auto_proc_program_id=message.program_id,
        batch_number=item["batch"],
        particles_in_batch=int(result.assignment.shape[0]),
        classes_in_batch=result.n_classes,
        binned_pixel_size_a=result.pixel_size_a,
        classes=[
            ClassValues(
                class_number=c + 1,
                image_full_path=str(images[c]),
                particles=int(result.particles_per_class[c]),
                distribution=float(np.clip(distribution[c], 0.0, 1.0)),
                resolution_a=float(result.resolution_a[c])
                if np.isfinite(result.resolution_a[c])
                else None,
                selected=bool(result.selected[c]),
            )
            for c in range(result.n_classes)
        ],
    )


def class2d(
    message: Class2DMessage, context: Context, *, rejected: Rejected | None = None
) -> list[Emit]:
    """Add the message's micrograph to its run's batches and classify what is due
    (``rejected``: which of a batch's movies curation rejects; None: all count)."""
    job = job_dir(message.project_dir, "Class2D", message.program_id)
    with _locked(job) as state:
        again = [ClassificationRecord.model_validate(r) for r in state["emitted"]]
        state["emitted"] = []
        _add(state, message)
        todo = [item for item in state["pending"] if _claim(item)]
    records: list[AnyRecord] = list(again)
    emits = []
    for item in todo:
        kept = _accepted(item, message, rejected)
        record = None if kept is None else _classify(job, kept, message)
        if record is not None and kept is not None:
            records.append(record)
            emits.append(Emit(CLASS3D, _selected(job, kept, record)))
        with _locked(job) as state:
            state["pending"] = [p for p in state["pending"] if _key(p) != _key(item)]
            if record is not None:
                state["emitted"].append(record.model_dump(mode="json"))
    return [*emits, Emit(RESULTS, WriteResults(records=records))] if records else []


def _selected(job: Path, item: dict[str, Any], record: ClassificationRecord) -> Class3DTrigger:
    """Where a classification's selected particles are, for live 3D (``class3d`` output)."""
    folder = job / f"batch_{item['batch']:03d}" / f"n{item['particles']:08d}"
    return Class3DTrigger(
        movie_path=item["last_movie"],
        batch_number=item["batch"],
        particles_in_batch=item["particles"],
        selected_star=str(folder / "run_selected_data.star"),
        selected_particles=sum(c.particles for c in record.classes if c.selected),
    )


def rejected_in(database_url: str, defaults: CurationThresholds) -> Rejected:
    """Curation's rejected movies among a batch's, read from the database (the collection's
    thresholds, or ``defaults``, judged on the message's run)."""

    def rejected(message: Class2DMessage, movies: Sequence[str]) -> set[str]:
        with sessions_for(database_url)() as session:
            return curation.evaluate(
                session,
                data_collection_id=message.data_collection_id,
                defaults=defaults,
                motion=message.program_id,
                movie_paths=movies,
            ).rejected_paths()

    return rejected


def class2d_service(
    database_url: str | None = None, curation_defaults: CurationThresholds | None = None
) -> Service[Class2DMessage]:
    """The service; with a database, batches leave out the movies curation rejects."""
    if database_url is None:
        return Service("class2d", Class2DMessage, class2d)
    rejected = rejected_in(database_url, curation_defaults or CurationThresholds())

    def handle(message: Class2DMessage, context: Context) -> list[Emit]:
        return class2d(message, context, rejected=rejected)

    return Service("class2d", Class2DMessage, handle)
