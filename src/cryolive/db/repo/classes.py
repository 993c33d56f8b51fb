"""2D classification results: one ParticleClassificationGroup per batch classification, one
ParticleClassification per class, as ISPyB holds them.

A group's ``programId`` is the 2D run's AutoProcProgram and its ``particlePickerId`` the
ParticlePicker row of the latest micrograph in the batch; a collection's groups are found
through that picker's program (ParticlePicker.programId → AutoProcProgram → ProcessingJob).
A batch classified again (more particles, a later micrograph) gets a new group: the gallery
shows the newest group of each batch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from ispyb.sqlalchemy import (
    AutoProcProgram,
    BLSession,
    DataCollection,
    MotionCorrection,
    Movie,
    ParticleClassification,
    ParticleClassificationGroup,
    ParticlePicker,
    Person,
    ProcessingJob,
)
from sqlalchemy.orm import Session

from cryolive.db.models import ClassChoice, ClassificationTime
from cryolive.db.repo._keys import table_of, upsert, upsert_many
from cryolive.records import ClassValues

__all__ = [
    "BatchRow",
    "ClassRow",
    "ClassSelection",
    "ClassValues",
    "automatic_selection",
    "choose_class",
    "effective_selected",
    "gallery",
    "picker_of",
    "run_selections",
    "selected_classes",
    "selected_particle_count",
    "write_classification",
]


def effective_selected() -> Any:
    """The selection of a ParticleClassification row as it stands: a person's choice
    (``cryolive_class_choice``, outer-joined on the class id) over the 2D engine's ``selected``.
    Every reader of the selection goes through this expression or :func:`selected_classes`."""
    return sa.func.coalesce(
        sa.cast(ClassChoice.selected, sa.Integer), ParticleClassification.selected, 0
    )


def choose_class(
    session: Session, *, particle_classification_id: int, person_id: int, selected: bool | None
) -> None:
    """Record a person's choice for one class (``None``: back to the automatic selection).

    The caller checks that the class exists and that the person may see its visit."""
    row = session.get(ClassChoice, particle_classification_id)
    if selected is None:
        if row is not None:
            session.delete(row)
        return
    if row is None:
        session.add(
            ClassChoice(
                particle_classification_id=particle_classification_id,
                selected=selected,
                person_id=person_id,
            )
        )
    else:
        row.selected = selected
        row.person_id = person_id
        row.chosen_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)


def write_classification(
    session: Session,
    *,
    program_id: int,
    particle_picker_id: int,
    batch_number: int,
    particles_in_batch: int,
    classes_in_batch: int,
    binned_pixel_size_a: float,
    classes: Sequence[ClassValues],
    started_at: dt.datetime | None = None,
    duration_s: float | None = None,
) -> int:
    """Record one 2D classification of a batch; returns its ParticleClassificationGroup id.

    Idempotent: the same (program, picker, batch) is written once (a redelivered message
    updates it); a later classification of the batch uses a later picker and adds a group.
    ``started_at`` (naive UTC) and ``duration_s``, which ISPyB has no column for, go to
    ``cryolive_classification_time``.
    """
    if batch_number < 1:
        raise ValueError(f"batch_number: must be >= 1, got {batch_number}")
    if particles_in_batch < 0 or classes_in_batch < 1:
        raise ValueError("particles_in_batch must be >= 0 and classes_in_batch >= 1")
    if binned_pixel_size_a <= 0:
        raise ValueError(f"binned_pixel_size_a: must be > 0, got {binned_pixel_size_a}")
    if duration_s is not None and duration_s < 0:
        raise ValueError(f"duration_s: must be >= 0, got {duration_s}")
    numbers = [c.class_number for c in classes]
    if len(set(numbers)) != len(numbers) or any(n > classes_in_batch for n in numbers):
        raise ValueError("classes: class numbers must be unique and <= classes_in_batch")
    key = (program_id, particle_picker_id, batch_number)
    group_id = upsert(
        session,
        table=table_of(ParticleClassificationGroup),
        key=key,
        values={
            "programId": program_id,
            "particlePickerId": particle_picker_id,
            "type": "2D",
            "batchNumber": batch_number,
            "numberOfParticlesPerBatch": particles_in_batch,
            "numberOfClassesPerBatch": classes_in_batch,
            "binnedPixelSize": binned_pixel_size_a,
        },
    )
    upsert_many(
        session,
        table=table_of(ParticleClassification),
        rows=[
            (
                (*key, c.class_number),
                {
                    "particleClassificationGroupId": group_id,
                    "classNumber": c.class_number,
                    "classImageFullPath": c.image_full_path,
                    "particlesPerClass": c.particles,
                    "classDistribution": c.distribution,
                    "estimatedResolution": c.resolution_a,
                    "selected": int(c.selected),
                },
            )
            for c in classes
        ],
    )
    if started_at is not None:
        session.merge(
            ClassificationTime(
                particle_classification_group_id=group_id,
                started_at=started_at,
                duration_s=duration_s,
            )
        )
    return group_id


def picker_of(
    session: Session, *, data_collection_id: int, movie_full_path: str, program_id: int
) -> int:
    """Id of the ParticlePicker row of a movie's micrograph in a run.

    Raises
    ------
    LookupError
        The picks are not recorded yet (results arrive in any order; the writer retries).
    """
    found = session.scalar(
        sa.select(ParticlePicker.particlePickerId)
        .join(
            MotionCorrection,
            ParticlePicker.firstMotionCorrectionId == MotionCorrection.motionCorrectionId,
        )
        .join(Movie, MotionCorrection.movieId == Movie.movieId)
        .where(
            Movie.dataCollectionId == data_collection_id,
            Movie.movieFullPath == movie_full_path,
            MotionCorrection.autoProcProgramId == program_id,
            ParticlePicker.programId == program_id,
        )
    )
    if found is None:
        raise LookupError(
            f"ParticlePicker: no row recorded for {movie_full_path!r} in program {program_id}"
        )
    return int(found)


@dataclass(frozen=True)
class ClassRow:
    particle_classification_id: int
    class_number: int
    particles: int
    distribution: float | None
    resolution_a: float | None
    selected: bool  # as it stands: the person's choice if any, else the engine's
    has_image: bool
    auto_selected: bool = False  # the 2D engine's selection by its score
    chosen_by_id: int | None = None  # the person who chose (None: automatic)
    chosen_by: str | None = None  # their login
    chosen_at: dt.datetime | None = None


@dataclass(frozen=True)
class BatchRow:
    """The newest classification of one batch."""

    group_id: int
    program_id: int
    batch_number: int
    particles: int
    classes_in_batch: int
    binned_pixel_size_a: float | None
    classes: list[ClassRow]
    started_at: dt.datetime | None = None  # when this classification ran (naive UTC)
    duration_s: float | None = None  # how long the 2D engine took


def gallery(session: Session, *, data_collection_id: int) -> list[BatchRow]:
    """The newest 2D classification of each batch of the collection, batches in order, each
    with its classes by class number."""
    groups = session.execute(
        sa.select(
            ParticleClassificationGroup.particleClassificationGroupId,
            ParticleClassificationGroup.programId,
            ParticleClassificationGroup.batchNumber,
            ParticleClassificationGroup.numberOfParticlesPerBatch,
            ParticleClassificationGroup.numberOfClassesPerBatch,
            ParticleClassificationGroup.binnedPixelSize,
            ClassificationTime.started_at,
            ClassificationTime.duration_s,
        )
        .outerjoin(
            ClassificationTime,
            ClassificationTime.particle_classification_group_id
            == ParticleClassificationGroup.particleClassificationGroupId,
        )
        .join(
            ParticlePicker,
            ParticlePicker.particlePickerId == ParticleClassificationGroup.particlePickerId,
        )
        .join(AutoProcProgram, AutoProcProgram.autoProcProgramId == ParticlePicker.programId)
        .join(ProcessingJob, ProcessingJob.processingJobId == AutoProcProgram.processingJobId)
        .where(
            ProcessingJob.dataCollectionId == data_collection_id,
            ParticleClassificationGroup.type == "2D",
        )
        .order_by(ParticleClassificationGroup.particleClassificationGroupId)
    ).all()
    newest: dict[tuple[int, int], Any] = {}
    for row in groups:  # later ids replace earlier ones of the same program and batch
        newest[(int(row[1]), int(row[2] or 0))] = row
    chosen = sorted(newest.values(), key=lambda r: (int(r[2] or 0), int(r[0])))
    classes: dict[int, list[ClassRow]] = {int(r[0]): [] for r in chosen}
    if classes:
        for c in session.execute(
            sa.select(
                ParticleClassification.particleClassificationGroupId,
                ParticleClassification.particleClassificationId,
                ParticleClassification.classNumber,
                ParticleClassification.particlesPerClass,
                ParticleClassification.classDistribution,
                ParticleClassification.estimatedResolution,
                ParticleClassification.selected,
                ParticleClassification.classImageFullPath,
                ClassChoice.selected,
                ClassChoice.person_id,
                Person.login,
                ClassChoice.chosen_at,
            )
            .outerjoin(
                ClassChoice,
                ClassChoice.particle_classification_id
                == ParticleClassification.particleClassificationId,
            )
            .outerjoin(Person, Person.personId == ClassChoice.person_id)
            .where(ParticleClassification.particleClassificationGroupId.in_(classes))
            .order_by(ParticleClassification.classNumber)
        ):
            by_person = c[8] is not None
            classes[int(c[0])].append(
                ClassRow(
                    particle_classification_id=int(c[1]),
                    class_number=int(c[2] or 0),
                    particles=int(c[3] or 0),
                    distribution=None if c[4] is None else float(c[4]),
                    resolution_a=None if c[5] is None else float(c[5]),
                    selected=bool(c[8]) if by_person else bool(c[6]),
                    has_image=bool(c[7]),
                    auto_selected=bool(c[6]),
                    chosen_by_id=int(c[9]) if by_person else None,
                    chosen_by=None if not by_person or c[10] is None else str(c[10]),
                    chosen_at=c[11] if by_person else None,
                )
            )
    return [
        BatchRow(
            group_id=int(r[0]),
            program_id=int(r[1]),
            batch_number=int(r[2] or 0),
            particles=int(r[3] or 0),
            classes_in_batch=int(r[4] or 0),
            binned_pixel_size_a=None if r[5] is None else float(r[5]),
            classes=classes[int(r[0])],
            started_at=r[6],
            duration_s=None if r[7] is None else float(r[7]),
        )
        for r in chosen
    ]


def automatic_selection(session: Session, *, particle_classification_id: int) -> bool:
    """The 2D engine's selection of one class (whatever a person chose)."""
    value = session.scalar(
        sa.select(ParticleClassification.selected).where(
            ParticleClassification.particleClassificationId == particle_classification_id
        )
    )
    return bool(value)


def selected_classes(session: Session, *, data_collection_id: int) -> list[ClassRow]:
    """The classes whose particles go on (to the next steps, 3D), of the newest classification
    of each batch: a person's choice where one was made, else the 2D engine's selection."""
    return [
        c
        for b in gallery(session, data_collection_id=data_collection_id)
        for c in b.classes
        if c.selected
    ]


def selected_particle_count(session: Session, *, data_collection_id: int) -> int:
    """Particles in :func:`selected_classes`."""
    return sum(
        c.particles for c in selected_classes(session, data_collection_id=data_collection_id)
    )


@dataclass(frozen=True)
class ClassSelection:
    """The selection of one 2D classification of a batch, as it stands."""

    selected: frozenset[int]  # class numbers whose particles go on (a person's choice first)
    automatic: frozenset[int]  # class numbers the 2D engine selected
    selected_particles: int  # particles in ``selected``

    @property
    def by_person(self) -> bool:
        """Whether a person's choices make it differ from the engine's."""
        return self.selected != self.automatic


def run_selections(session: Session, *, program_id: int) -> dict[tuple[int, str], ClassSelection]:
    """Every 2D classification of a run (AutoProcProgram ``program_id``), keyed by (batch
    number, full path of the batch's latest movie: its ParticlePicker's), with its selection
    through :func:`effective_selected`. The key is what a classification's
    ``Class3DTrigger`` carries, so live 3D finds the classification whose particles it
    gathers and follows the choices made on it since."""
    rows = session.execute(
        sa.select(
            ParticleClassificationGroup.batchNumber,
            Movie.movieFullPath,
            ParticleClassification.classNumber,
            ParticleClassification.particlesPerClass,
            ParticleClassification.selected,
            effective_selected(),
        )
        .join(
            ParticleClassificationGroup,
            ParticleClassificationGroup.particleClassificationGroupId
            == ParticleClassification.particleClassificationGroupId,
        )
        .join(
            ParticlePicker,
            ParticlePicker.particlePickerId == ParticleClassificationGroup.particlePickerId,
        )
        .join(
            MotionCorrection,
            MotionCorrection.motionCorrectionId == ParticlePicker.firstMotionCorrectionId,
        )
        .join(Movie, Movie.movieId == MotionCorrection.movieId)
        .outerjoin(
            ClassChoice,
            ClassChoice.particle_classification_id
            == ParticleClassification.particleClassificationId,
        )
        .where(
            ParticleClassificationGroup.programId == program_id,
            ParticleClassificationGroup.type == "2D",
        )
    ).all()
    found: dict[tuple[int, str], tuple[set[int], set[int], list[int]]] = {}
    for batch, movie, number, particles, automatic, selected in rows:
        chosen, auto, count = found.setdefault((int(batch or 0), str(movie)), (set(), set(), [0]))
        if selected:
            chosen.add(int(number))
            count[0] += int(particles or 0)
        if automatic:
            auto.add(int(number))
    return {
        key: ClassSelection(
            selected=frozenset(chosen), automatic=frozenset(auto), selected_particles=count[0]
        )
        for key, (chosen, auto, count) in found.items()
    }


def to_collection(query: Any) -> Any:
    """``query`` over ParticleClassification joined through its group, picker, program and job
    to its DataCollection (2D and 3D classes alike)."""
    return (
        query.join(
            ParticleClassificationGroup,
            ParticleClassificationGroup.particleClassificationGroupId
            == ParticleClassification.particleClassificationGroupId,
        )
        .join(
            ParticlePicker,
            ParticlePicker.particlePickerId == ParticleClassificationGroup.particlePickerId,
        )
        .join(AutoProcProgram, AutoProcProgram.autoProcProgramId == ParticlePicker.programId)
        .join(ProcessingJob, ProcessingJob.processingJobId == AutoProcProgram.processingJobId)
        .join(DataCollection, DataCollection.dataCollectionId == ProcessingJob.dataCollectionId)
    )


def class_image(
    session: Session, *, particle_classification_id: int
) -> tuple[str | None, int] | None:
    """(recorded image path, session id of its visit) of a class, or None if no such class."""
    row = session.execute(
        to_collection(
            sa.select(ParticleClassification.classImageFullPath, DataCollection.SESSIONID)
        )
        .join(BLSession, BLSession.sessionId == DataCollection.SESSIONID)
        .where(ParticleClassification.particleClassificationId == particle_classification_id)
    ).first()
    return None if row is None else (row[0], int(row[1]))
