"""3D results in ISPyB: a 3D run (group, classes with maps, the initial model linked to each
class) and a refinement (one-class group with BFactorFit rows), written through the writer's
``write_records`` idempotently, read back for the web; the B-factor fit recovers a planted B;
the selected 2D particles are counted from the newest classification of each batch."""

from __future__ import annotations

import math
from typing import Any

import pytest
import sqlalchemy as sa
from ispyb.sqlalchemy import (
    BFactorFit,
    CryoemInitialModel,
    ParticleClassification,
    ParticleClassificationGroup,
    t_ParticleClassification_has_CryoemInitialModel,
)
from sqlalchemy.orm import Session

from cryolive.db.repo import classes, recon3d
from cryolive.db.repo.pipeline import write_records
from cryolive.records import (
    BFactorPoint,
    Class3DRecord,
    Class3DValues,
    ClassificationRecord,
    ClassValues,
    InitialModelValues,
    MovieRef,
    RefinementRecord,
)
from tests.runs import picked


def _picked(c: Any, n: int = 2) -> tuple[int, list[MovieRef]]:
    program = c.motion_program_id
    refs = [
        MovieRef(data_collection_id=c.data_collection_id, movie_full_path=f"/raw/m{i}.tiff")
        for i in range(n)
    ]
    return program, refs


def _class3d(program: int, ref: MovieRef, run: int, particles: int) -> Class3DRecord:
    return Class3DRecord(
        movie=ref,
        auto_proc_program_id=program,
        run_number=run,
        particles=particles,
        symmetry="C1",
        binned_pixel_size_a=3.6,
        initial_model=InitialModelValues(particles=particles, resolution_a=30.0),
        classes=[
            Class3DValues(
                class_number=k,
                map_full_path=f"/processed/Class3D/job017/run_{run:03d}/Class3D/class00{k}.mrc",
                particles=particles // 2,
                distribution=0.5,
                resolution_a=8.0 if k == 1 else 25.0,
                completeness=0.95,
                rotation_accuracy_deg=4.0,
                translation_accuracy_a=1.5,
                angular_efficiency=0.8 if k == 1 else 0.1,
                selected=k == 1,
            )
            for k in (1, 2)
        ],
    )


def _refinement(program: int, ref: MovieRef, points: list[tuple[int, float]]) -> RefinementRecord:
    return RefinementRecord(
        movie=ref,
        auto_proc_program_id=program,
        run_number=len(points),
        class_number=1,
        particles=points[-1][0],
        symmetry="C1",
        pixel_size_a=3.6,
        map_full_path="/processed/Refine3D/job018/run_001_class001/PostProcess/postprocess.mrc",
        resolution_a=points[-1][1],
        angular_efficiency=0.8,
        bfactor_points=[BFactorPoint(particles=n, resolution_a=d) for n, d in points],
    )


def _count(db: Session, what: Any) -> int:
    return int(db.scalar(sa.select(sa.func.count()).select_from(what)) or 0)


def test_3d_runs_and_refinements_are_written_once_and_read_back(
    db: Session, collection: Any
) -> None:
    program, refs = _picked(collection)
    write_records(db, records=picked(collection.motion_program_id, refs), now=0.0)
    runs = [_class3d(program, refs[0], 1, 1000), _class3d(program, refs[1], 2, 2000)]
    refined = _refinement(program, refs[1], [(1000, 9.0), (2000, 7.5)])
    before = {t: _count(db, t) for t in (ParticleClassificationGroup, BFactorFit)}
    for _ in range(2):  # a redelivered message changes nothing
        write_records(db, records=[*runs, refined], now=1.0)
    assert _count(db, ParticleClassificationGroup) - before[ParticleClassificationGroup] == 3
    assert _count(db, BFactorFit) - before[BFactorFit] == 2
    got = recon3d.results_3d(db, data_collection_id=collection.data_collection_id)
    assert [(r.run_number, r.particles, len(r.classes)) for r in got.runs] == [
        (1, 1000, 2),
        (2, 2000, 2),
    ]
    first = got.runs[0]
    assert (first.initial_model_particles, first.initial_model_resolution_a) == (1000, 30.0)
    assert [(c.class_number, c.resolution_a, c.selected) for c in first.classes] == [
        (1, 8.0, True),
        (2, 25.0, False),
    ]
    assert first.classes[0].angular_efficiency == pytest.approx(0.8)
    (refinement,) = got.refinements
    assert (refinement.particles, refinement.resolution_a) == (2000, 7.5)
    assert [(p.particles, p.resolution_a) for p in refinement.points] == [(1000, 9.0), (2000, 7.5)]
    # two points: ln N = (B/2) / d² + c through both
    slope = (math.log(2000) - math.log(1000)) / (1 / 7.5**2 - 1 / 9.0**2)
    assert refinement.bfactor_a2 == pytest.approx(2 * slope, rel=1e-4)
    # each class of a run links to that run's initial model, once
    link = t_ParticleClassification_has_CryoemInitialModel
    linked = db.execute(
        sa.select(link.c.particleClassificationId, CryoemInitialModel.numberOfParticles)
        .join(
            CryoemInitialModel,
            CryoemInitialModel.cryoemInitialModelId == link.c.cryoemInitialModelId,
        )
        .where(
            link.c.particleClassificationId.in_(
                [c.particle_classification_id for c in first.classes]
            )
        )
    ).all()
    assert sorted(n for _, n in linked) == [1000, 1000]
    row = db.get(ParticleClassification, refinement.particle_classification_id)
    assert row is not None and row.classImageFullPath == refined.map_full_path and row.selected == 1


def test_a_3d_record_waits_for_its_picks(db: Session, collection: Any) -> None:
    ref = MovieRef(
        data_collection_id=collection.data_collection_id, movie_full_path="/raw/none.tiff"
    )
    with pytest.raises(LookupError, match="ParticlePicker"):
        write_records(db, records=[_class3d(collection.motion_program_id, ref, 1, 100)], now=0.0)


def test_bfactor_fit_recovers_a_planted_bfactor() -> None:
    bfactor, n0 = 120.0, 20.0  # 1/d² = (2/B) ln(N/N0)
    points = [
        BFactorPoint(particles=n, resolution_a=1 / math.sqrt(2 / bfactor * math.log(n / n0)))
        for n in (1000, 2000, 4000, 8000)
    ]
    fit = recon3d.bfactor_fit(points)
    assert fit is not None
    intercept, linear, quadratic = fit
    assert 2 * linear == pytest.approx(bfactor, rel=1e-3)
    assert intercept == pytest.approx(math.log(n0), rel=1e-3) and abs(quadratic) < 1e-3
    assert recon3d.bfactor_fit(points[:1]) is None  # one count: no slope


def test_selected_particles_count_the_newest_classification_of_each_batch(
    db: Session, collection: Any
) -> None:
    program, refs = _picked(collection)
    write_records(db, records=picked(collection.motion_program_id, refs), now=0.0)

    def classified(
        ref: MovieRef, batch: int, selected: list[int], others: int
    ) -> ClassificationRecord:
        values = [
            ClassValues(
                class_number=k + 1,
                image_full_path="/p.png",
                particles=n,
                distribution=0.1,
                selected=True,
            )
            for k, n in enumerate(selected)
        ]
        values.append(
            ClassValues(
                class_number=len(values) + 1,
                image_full_path="/p.png",
                particles=others,
                distribution=0.1,
            )
        )
        return ClassificationRecord(
            movie=ref,
            auto_proc_program_id=program,
            batch_number=batch,
            particles_in_batch=sum(selected) + others,
            classes_in_batch=len(values),
            binned_pixel_size_a=3.0,
            classes=values,
        )

    write_records(db, records=[classified(refs[0], 1, [100, 50], 40)], now=0.0)
    count = classes.selected_particle_count
    assert count(db, data_collection_id=collection.data_collection_id) == 150
    # batch 1 classified again (a later micrograph): its newest selection replaces the first
    write_records(db, records=[classified(refs[1], 1, [300], 90)], now=0.0)
    assert count(db, data_collection_id=collection.data_collection_id) == 300
