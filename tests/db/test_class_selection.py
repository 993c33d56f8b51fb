"""The selection of a run's 2D classifications as it stands (``classes.run_selections``, what
live 3D gathers): a person's choice of a class over the 2D engine's, per classification keyed by
(batch, latest movie), the same on SQLite and MariaDB as the web's count of selected particles."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from cryolive.db.repo import classes
from cryolive.db.repo.pipeline import write_records
from cryolive.records import (
    ClassificationRecord,
    ClassValues,
    MovieRef,
)
from tests.runs import picked


def _classified(
    program: int, ref: MovieRef, batch: int, particles: list[int], selected: set[int]
) -> ClassificationRecord:
    return ClassificationRecord(
        movie=ref,
        auto_proc_program_id=program,
        batch_number=batch,
        particles_in_batch=sum(particles),
        classes_in_batch=len(particles),
        binned_pixel_size_a=3.0,
        classes=[
            ClassValues(
                class_number=k,
                image_full_path=f"/c{k}.png",
                particles=n,
                distribution=n / sum(particles),
                selected=k in selected,
            )
            for k, n in enumerate(particles, start=1)
        ],
    )


def test_a_persons_choice_overrides_the_engine_per_classification(
    db: Session, collection: Any
) -> None:
    program = collection.motion_program_id
    refs = [
        MovieRef(
            data_collection_id=collection.data_collection_id, movie_full_path=f"/raw/m{i}.tiff"
        )
        for i in range(3)
    ]
    write_records(
        db,
        records=[
            *picked(collection.motion_program_id, refs),
            _classified(program, refs[0], 1, [100, 60, 40], {1, 2}),
            _classified(program, refs[1], 1, [300, 90, 10], {1}),  # batch 1 again, later
            _classified(program, refs[2], 2, [70, 30], {1}),
        ],
        now=0.0,
    )
    got = classes.run_selections(db, program_id=program)
    assert set(got) == {(1, "/raw/m0.tiff"), (1, "/raw/m1.tiff"), (2, "/raw/m2.tiff")}
    first = got[(1, "/raw/m0.tiff")]
    assert (first.selected, first.automatic, first.selected_particles) == ({1, 2}, {1, 2}, 160)
    assert not first.by_person
    assert classes.selected_particle_count(
        db, data_collection_id=collection.data_collection_id
    ) == (300 + 70)

    newest = {
        c.class_number: c
        for c in classes.gallery(db, data_collection_id=collection.data_collection_id)[0].classes
    }
    # deselect a class the engine selected, select one it rejected
    classes.choose_class(
        db,
        particle_classification_id=newest[1].particle_classification_id,
        person_id=5,
        selected=False,
    )
    classes.choose_class(
        db,
        particle_classification_id=newest[3].particle_classification_id,
        person_id=5,
        selected=True,
    )
    db.flush()
    got = classes.run_selections(db, program_id=program)
    chosen = got[(1, "/raw/m1.tiff")]
    assert (chosen.selected, chosen.automatic, chosen.selected_particles) == ({3}, {1}, 10)
    assert chosen.by_person
    assert got[(1, "/raw/m0.tiff")] == first  # the older classification's classes are others
    assert got[(2, "/raw/m2.tiff")].selected_particles == 70
    # the web counts the same selection
    assert classes.selected_particle_count(
        db, data_collection_id=collection.data_collection_id
    ) == (10 + 70)
    # back to the automatic selection
    for k in (1, 3):
        classes.choose_class(
            db,
            particle_classification_id=newest[k].particle_classification_id,
            person_id=5,
            selected=None,
        )
    db.flush()
    back = classes.run_selections(db, program_id=program)[(1, "/raw/m1.tiff")]
    assert (back.selected, back.selected_particles, back.by_person) == ({1}, 300, False)
    # another run's classifications are not this run's
    assert classes.run_selections(db, program_id=collection.ctf_program_id) == {}
