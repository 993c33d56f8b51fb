"""3D results as ISPyB holds them, recorded the way Diamond's pipeline does.

- A live 3D run (initial model + 3D classification) is a ParticleClassificationGroup of type
  "3D" (``batchNumber``: the run's number, ``numberOfParticlesPerBatch``: its particles), one
  ParticleClassification per class (``classImageFullPath``: the class's MRC map), and one
  CryoemInitialModel linked to every class (ParticleClassification_has_CryoemInitialModel).
- A refinement is a "3D" group with one class: the postprocessed map, its resolution, and
  BFactorFit rows (the resolutions of the refinements so far against their particle counts,
  the points of the Rosenthal-Henderson plot). A "3D" group is a refinement when its class has
  BFactorFit rows.

Both hang from the ParticlePicker row of the latest micrograph they hold, like 2D groups, so a
collection's 3D results are found through the picker's program. Writes are idempotent upserts
on natural keys (a redelivered record changes nothing).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa
from ispyb.sqlalchemy import (
    AutoProcProgram,
    BFactorFit,
    CryoemInitialModel,
    DataCollection,
    ParticleClassification,
    ParticleClassificationGroup,
    ParticlePicker,
    ProcessingJob,
    t_ParticleClassification_has_CryoemInitialModel,
)
from sqlalchemy.orm import Session

from cryolive.db.repo._keys import table_of, upsert, upsert_many
from cryolive.db.repo.classes import to_collection
from cryolive.records import BFactorPoint, Class3DRecord, RefinementRecord

__all__ = [
    "BFactorRow",
    "Class3DRow",
    "Class3DRun",
    "MapRow",
    "Refinement",
    "Results3D",
    "bfactor_fit",
    "map_of",
    "results_3d",
    "write_class3d",
    "write_refinement",
]

GROUP = table_of(ParticleClassificationGroup)
CLASS = table_of(ParticleClassification)
LINK = t_ParticleClassification_has_CryoemInitialModel


def write_class3d(session: Session, *, record: Class3DRecord, particle_picker_id: int) -> int:
    """Record one live 3D run; returns its ParticleClassificationGroup id."""
    numbers = [c.class_number for c in record.classes]
    if len(set(numbers)) != len(numbers):
        raise ValueError("classes: class numbers must be unique")
    key = ("class3d", record.auto_proc_program_id, record.run_number)
    group_id = upsert(
        session,
        table=GROUP,
        key=key,
        values={
            "programId": record.auto_proc_program_id,
            "particlePickerId": particle_picker_id,
            "type": "3D",
            "batchNumber": record.run_number,
            "numberOfParticlesPerBatch": record.particles,
            "numberOfClassesPerBatch": len(record.classes),
            "symmetry": record.symmetry,
            "binnedPixelSize": record.binned_pixel_size_a,
        },
    )
    class_ids = upsert_many(
        session,
        table=CLASS,
        rows=[
            (
                (*key, c.class_number),
                {
                    "particleClassificationGroupId": group_id,
                    "classNumber": c.class_number,
                    "classImageFullPath": c.map_full_path,
                    "particlesPerClass": c.particles,
                    "classDistribution": c.distribution,
                    "estimatedResolution": c.resolution_a,
                    "overallFourierCompleteness": c.completeness,
                    "rotationAccuracy": c.rotation_accuracy_deg,
                    "translationAccuracy": c.translation_accuracy_a,
                    "angularEfficiency": c.angular_efficiency,
                    "selected": int(c.selected),
                },
            )
            for c in record.classes
        ],
    )
    model_id = upsert(
        session,
        table=table_of(CryoemInitialModel),
        key=key,
        values={
            "numberOfParticles": record.initial_model.particles,
            "resolution": record.initial_model.resolution_a,
        },
    )
    linked = set(
        session.scalars(
            sa.select(LINK.c.particleClassificationId).where(
                LINK.c.cryoemInitialModelId == model_id,
                LINK.c.particleClassificationId.in_(class_ids),
            )
        )
    )
    new = [i for i in class_ids if i not in linked]
    if new:
        session.execute(
            sa.insert(LINK),
            [{"particleClassificationId": i, "cryoemInitialModelId": model_id} for i in new],
        )
    return group_id


def bfactor_fit(points: Sequence[BFactorPoint]) -> tuple[float, float, float] | None:
    """(intercept, linear, quadratic) of ln N fitted against 1/d² (Å⁻²), as ISPyB's
    ``bFactorFit*`` columns hold it: the linear coefficient is B/2 (Rosenthal & Henderson
    2003, doi:10.1016/j.jmb.2003.07.013). A straight line below three particle counts, a
    quadratic from three; None below two."""
    by_count = {p.particles: p.resolution_a for p in points}
    if len(by_count) < 2:
        return None
    x = np.array([1.0 / by_count[n] ** 2 for n in sorted(by_count)])
    y = np.log(np.array(sorted(by_count), dtype=np.float64))
    if np.ptp(x) <= 0:
        return None
    if len(by_count) < 3:
        linear, intercept = np.polyfit(x, y, 1)
        return float(intercept), float(linear), 0.0
    quadratic, linear, intercept = np.polyfit(x, y, 2)
    return float(intercept), float(linear), float(quadratic)


def write_refinement(session: Session, *, record: RefinementRecord, particle_picker_id: int) -> int:
    """Record one refinement (with its postprocessing); returns its ParticleClassification id."""
    key = ("refine3d", record.auto_proc_program_id, record.run_number, record.class_number)
    group_id = upsert(
        session,
        table=GROUP,
        key=key,
        values={
            "programId": record.auto_proc_program_id,
            "particlePickerId": particle_picker_id,
            "type": "3D",
            "batchNumber": record.run_number,
            "numberOfParticlesPerBatch": record.particles,
            "numberOfClassesPerBatch": 1,
            "symmetry": record.symmetry,
            "binnedPixelSize": record.pixel_size_a,
        },
    )
    fit = bfactor_fit(record.bfactor_points)
    class_id = upsert(
        session,
        table=CLASS,
        key=(*key, 1),
        values={
            "particleClassificationGroupId": group_id,
            "classNumber": 1,
            "classImageFullPath": record.map_full_path,
            "particlesPerClass": record.particles,
            "classDistribution": 1.0,
            "estimatedResolution": record.resolution_a,
            "overallFourierCompleteness": record.completeness,
            "rotationAccuracy": record.rotation_accuracy_deg,
            "translationAccuracy": record.translation_accuracy_a,
            "angularEfficiency": record.angular_efficiency,
            "selected": 1,
            "bFactorFitIntercept": None if fit is None else fit[0],
            "bFactorFitLinear": None if fit is None else fit[1],
            "bFactorFitQuadratic": None if fit is None else fit[2],
        },
    )
    upsert_many(
        session,
        table=table_of(BFactorFit),
        rows=[
            (
                (*key, 1, p.particles),
                {
                    "particleClassificationId": class_id,
                    "resolution": p.resolution_a,
                    "numberOfParticles": p.particles,
                    "particleBatchSize": record.particles,
                },
            )
            for p in record.bfactor_points
        ],
    )
    return class_id


@dataclass(frozen=True)
class Class3DRow:
    particle_classification_id: int
    class_number: int
    particles: int
    distribution: float | None
    resolution_a: float | None
    completeness: float | None
    angular_efficiency: float | None
    selected: bool
    has_map: bool


@dataclass(frozen=True)
class Class3DRun:
    group_id: int
    run_number: int
    particles: int
    symmetry: str | None
    pixel_size_a: float | None
    initial_model_particles: int | None
    initial_model_resolution_a: float | None
    classes: list[Class3DRow]


@dataclass(frozen=True)
class BFactorRow:
    particles: int
    resolution_a: float


@dataclass(frozen=True)
class Refinement:
    particle_classification_id: int
    run_number: int
    particles: int
    symmetry: str | None
    pixel_size_a: float | None
    resolution_a: float | None
    completeness: float | None
    angular_efficiency: float | None
    bfactor_a2: float | None
    has_map: bool
    points: list[BFactorRow] = field(default_factory=list)


@dataclass(frozen=True)
class Results3D:
    """A collection's 3D results, oldest first."""

    runs: list[Class3DRun]
    refinements: list[Refinement]


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def results_3d(session: Session, *, data_collection_id: int) -> Results3D:
    """Every 3D run and refinement of a data collection, in the order they were recorded."""
    groups = session.execute(
        sa.select(
            ParticleClassificationGroup.particleClassificationGroupId,
            ParticleClassificationGroup.batchNumber,
            ParticleClassificationGroup.numberOfParticlesPerBatch,
            ParticleClassificationGroup.symmetry,
            ParticleClassificationGroup.binnedPixelSize,
        )
        .join(
            ParticlePicker,
            ParticlePicker.particlePickerId == ParticleClassificationGroup.particlePickerId,
        )
        .join(AutoProcProgram, AutoProcProgram.autoProcProgramId == ParticlePicker.programId)
        .join(ProcessingJob, ProcessingJob.processingJobId == AutoProcProgram.processingJobId)
        .where(
            ProcessingJob.dataCollectionId == data_collection_id,
            ParticleClassificationGroup.type == "3D",
        )
        .order_by(ParticleClassificationGroup.particleClassificationGroupId)
    ).all()
    if not groups:
        return Results3D(runs=[], refinements=[])
    by_group: dict[int, list[Any]] = {int(g[0]): [] for g in groups}
    for c in session.execute(
        sa.select(
            ParticleClassification.particleClassificationGroupId,
            ParticleClassification.particleClassificationId,
            ParticleClassification.classNumber,
            ParticleClassification.particlesPerClass,
            ParticleClassification.classDistribution,
            ParticleClassification.estimatedResolution,
            ParticleClassification.overallFourierCompleteness,
            ParticleClassification.angularEfficiency,
            ParticleClassification.selected,
            ParticleClassification.classImageFullPath,
            ParticleClassification.bFactorFitLinear,
        )
        .where(ParticleClassification.particleClassificationGroupId.in_(by_group))
        .order_by(ParticleClassification.classNumber)
    ):
        by_group[int(c[0])].append(c)
    class_ids = [int(c[1]) for rows in by_group.values() for c in rows]
    points: dict[int, list[BFactorRow]] = {}
    for b in session.execute(
        sa.select(
            BFactorFit.particleClassificationId, BFactorFit.numberOfParticles, BFactorFit.resolution
        )
        .where(BFactorFit.particleClassificationId.in_(class_ids))
        .order_by(BFactorFit.numberOfParticles)
    ):
        if b[1] is not None and b[2] is not None:
            points.setdefault(int(b[0]), []).append(BFactorRow(int(b[1]), float(b[2])))
    models: dict[int, tuple[int | None, float | None]] = {}
    for m in session.execute(
        sa.select(
            LINK.c.particleClassificationId,
            CryoemInitialModel.numberOfParticles,
            CryoemInitialModel.resolution,
        )
        .join(
            CryoemInitialModel,
            CryoemInitialModel.cryoemInitialModelId == LINK.c.cryoemInitialModelId,
        )
        .where(LINK.c.particleClassificationId.in_(class_ids))
    ):
        models[int(m[0])] = (None if m[1] is None else int(m[1]), _number(m[2]))
    runs, refinements = [], []
    for g in groups:
        rows = by_group[int(g[0])]
        if len(rows) == 1 and int(rows[0][1]) in points:
            c = rows[0]
            linear = _number(c[10])
            refinements.append(
                Refinement(
                    particle_classification_id=int(c[1]),
                    run_number=int(g[1] or 0),
                    particles=int(g[2] or 0),
                    symmetry=g[3],
                    pixel_size_a=_number(g[4]),
                    resolution_a=_number(c[5]),
                    completeness=_number(c[6]),
                    angular_efficiency=_number(c[7]),
                    bfactor_a2=None if not linear else 2.0 * linear,
                    has_map=bool(c[9]),
                    points=points[int(rows[0][1])],
                )
            )
            continue
        model = next((models[int(c[1])] for c in rows if int(c[1]) in models), (None, None))
        runs.append(
            Class3DRun(
                group_id=int(g[0]),
                run_number=int(g[1] or 0),
                particles=int(g[2] or 0),
                symmetry=g[3],
                pixel_size_a=_number(g[4]),
                initial_model_particles=model[0],
                initial_model_resolution_a=model[1],
                classes=[
                    Class3DRow(
                        particle_classification_id=int(c[1]),
                        class_number=int(c[2] or 0),
                        particles=int(c[3] or 0),
                        distribution=_number(c[4]),
                        resolution_a=_number(c[5]),
                        completeness=_number(c[6]),
                        angular_efficiency=_number(c[7]),
                        selected=bool(c[8]),
                        has_map=bool(c[9]),
                    )
                    for c in rows
                ],
            )
        )
    return Results3D(runs=runs, refinements=refinements)


@dataclass(frozen=True)
class MapRow:
    """A 3D class's or refinement's recorded map, and the visit it belongs to."""

    path: str | None
    session_id: int
    data_collection_id: int
    refinement: bool


def map_of(session: Session, *, particle_classification_id: int) -> MapRow | None:
    """The map of a class of a "3D" group (a 3D class or a refinement), or None."""
    row = session.execute(
        to_collection(
            sa.select(
                ParticleClassification.classImageFullPath,
                DataCollection.SESSIONID,
                DataCollection.dataCollectionId,
            )
        ).where(
            ParticleClassification.particleClassificationId == particle_classification_id,
            ParticleClassificationGroup.type == "3D",
        )
    ).first()
    if row is None:
        return None
    fits = session.scalar(
        sa.select(sa.func.count())
        .select_from(BFactorFit)
        .where(BFactorFit.particleClassificationId == particle_classification_id)
    )
    return MapRow(row[0], int(row[1]), int(row[2]), refinement=bool(fits))
