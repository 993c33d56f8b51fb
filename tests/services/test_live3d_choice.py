"""Live 3D follows people's choices of 2D classes (issue #24): the particles a 3D run gathers
are those of the classes selected as they stand in the database (a person's choice over the 2D
engine's), re-read with every message, so a class deselected after its batch was sent on is
left out of the next run and a class the engine rejected, once selected, is put in. The 3D
commands are stand-ins that write their file contracts (tests/fake3d.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
import starfile
from ispyb.sqlalchemy import ParticleClassification, ParticleClassificationGroup

from cryolive.db.repo import classes
from cryolive.db.repo.pipeline import write_records
from cryolive.engines.class2d import fourier_crop
from cryolive.io.layout import job_dir
from cryolive.io.particle_files import read_particles_3d
from cryolive.records import (
    ClassificationRecord,
    ClassValues,
    MovieRef,
)
from cryolive.services import class3d as class3d_module
from cryolive.services.messages import Class3DMessage
from tests.runs import picked, sqlite_run
from tests.services.test_live3d import CONTEXT, PER_BATCH, _split, fake3d, selections

__all__ = ["selections"]  # the fixture: five batches of 80 simulated particles (box 32, 3 Å)
CLASS_1 = 50  # each batch's first 50 particles are in class 1, the other 30 in class 2


def _classified(star: Path) -> tuple[str, str]:
    """Write a classification's files beside the simulated particles: ``run_data.star`` (every
    particle with rlnClassNumber) and ``run_selected_data.star`` (the engine's selection:
    class 1). Returns both paths."""
    tables = starfile.read(star, always_dict=True)
    particles = tables["particles"].copy()
    particles["rlnClassNumber"] = np.where(np.arange(len(particles)) < CLASS_1, 1, 2)
    data, selected = star.with_name("run_data.star"), star.with_name("run_selected_data.star")
    starfile.write({"optics": tables["optics"], "particles": particles}, data, overwrite=True)
    chosen = particles[particles["rlnClassNumber"] == 1]
    starfile.write({"optics": tables["optics"], "particles": chosen}, selected, overwrite=True)
    return str(data), str(selected)


def _record(ref: MovieRef, program: int, batch: int) -> ClassificationRecord:
    return ClassificationRecord(
        movie=ref,
        auto_proc_program_id=program,
        batch_number=batch,
        particles_in_batch=PER_BATCH,
        classes_in_batch=2,
        binned_pixel_size_a=3.0,
        classes=[
            ClassValues(
                class_number=1,
                image_full_path="/c1.png",
                particles=CLASS_1,
                distribution=CLASS_1 / PER_BATCH,
                selected=True,
            ),
            ClassValues(
                class_number=2,
                image_full_path="/c2.png",
                particles=PER_BATCH - CLASS_1,
                distribution=1 - CLASS_1 / PER_BATCH,
            ),
        ],
    )


def _class_id(db: sa.orm.Session, program: int, batch: int, number: int) -> int:
    return int(
        db.scalars(
            sa.select(ParticleClassification.particleClassificationId)
            .join(
                ParticleClassificationGroup,
                ParticleClassificationGroup.particleClassificationGroupId
                == ParticleClassification.particleClassificationGroupId,
            )
            .where(
                ParticleClassificationGroup.programId == program,
                ParticleClassificationGroup.batchNumber == batch,
                ParticleClassification.classNumber == number,
            )
        ).one()
    )


def _expected(star: Path, rows: slice) -> np.ndarray:
    """The run's images of these particles: windowed to 24 px, downscaled to 20 px."""
    stack, _ = read_particles_3d(star)
    return fourier_crop(np.asarray(stack.images)[rows, 4:28, 4:28], 20)


def test_the_next_3d_run_gathers_the_classes_chosen_since_the_last(
    selections: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(class3d_module, "run_step", fake3d.run_step)
    url, sessions, dc, program = sqlite_run(tmp_path)
    refs = [
        MovieRef(data_collection_id=dc, movie_full_path=f"/visit/raw/mic{b}.tiff")
        for b in (1, 2, 3)
    ]
    picked_ = picked(program, refs, particles=PER_BATCH)
    with sessions.begin() as db:
        # batches 1 and 2 are recorded; batch 3's record has not reached the database yet
        write_records(db, records=[*picked_, _record(refs[0], program, 1)], now=0.0)
        write_records(db, records=[_record(refs[1], program, 2)], now=0.0)
    stars = [_classified(s) for s in selections[:3]]
    chosen = class3d_module.chosen_in(url)

    def send(batch: int) -> list[tuple[int, int]]:
        message = Class3DMessage.model_validate(
            {
                "data_collection_id": dc,
                "program_id": program,
                "project_dir": str(tmp_path),
                "movie_path": refs[batch - 1].movie_full_path,
                "batch_number": batch,
                "particles_in_batch": PER_BATCH,
                "selected_star": stars[batch - 1][1],
                "selected_particles": CLASS_1,
                "particle_diameter_a": 60.0,
                "class3d": {"first_particles": 100, "growth": 1.5, "classes": 2},
                "refine3d": {"enabled": False},
            }
        )
        records, _ = _split(class3d_module.class3d(message, CONTEXT, chosen=chosen))
        return [(r.run_number, r.particles) for r in records]

    assert send(1) == []  # 50 selected particles
    assert send(2) == [(1, 100)]  # 50 + 50: the engine's class 1 of both batches
    job = job_dir(tmp_path, "Class3D", program)
    first, _ = read_particles_3d(job / "run_001" / "particles.star")
    np.testing.assert_allclose(
        first.images[:CLASS_1], _expected(selections[0], slice(0, CLASS_1)), atol=1e-4
    )

    # after batch 1 went on, a person swaps its classes: class 1 out, class 2 (30) in
    with sessions.begin() as db:
        for number, selected in ((1, False), (2, True)):
            classes.choose_class(
                db,
                particle_classification_id=_class_id(db, program, 1, number),
                person_id=1,
                selected=selected,
            )
    # batch 3: 30 + 50 + 50 = 130 < 1.5 x 100; with the engine's selection 150 would be due
    assert send(3)[-1:] == [(1, 100)]  # only run 1's record again
    # and selecting batch 2's class 2 too: 30 + 80 + 50 = 160 >= 150, run 2 is due
    with sessions.begin() as db:
        classes.choose_class(
            db,
            particle_classification_id=_class_id(db, program, 2, 2),
            person_id=1,
            selected=True,
        )
    assert send(3) == [(2, 160)]
    second, _ = read_particles_3d(job / "run_002" / "particles.star")
    expected = np.concatenate(
        [
            _expected(selections[0], slice(CLASS_1, PER_BATCH)),  # batch 1: class 2 only
            _expected(selections[1], slice(0, PER_BATCH)),  # batch 2: both classes
            _expected(selections[2], slice(0, CLASS_1)),  # batch 3: the engine's, unrecorded
        ]
    )
    assert second.images.shape == (160, 20, 20)
    np.testing.assert_allclose(second.images, expected, atol=1e-4)
    sessions.kw["bind"].dispose()


def test_without_a_database_or_a_choice_the_engines_selection_goes_on(tmp_path: Path) -> None:
    """Unknown classifications (no database, not yet recorded, a state from before choices)
    and choices equal to the engine's leave the engine's STAR file as it is."""
    entry = {"star": "/p/run_selected_data.star", "selected": 40, "movie": "/m.tiff"}
    same = classes.ClassSelection(
        selected=frozenset({1}), automatic=frozenset({1}), selected_particles=40
    )
    for found in (
        {},
        {(1, "/m.tiff"): same},
        {(2, "/m.tiff"): classes.ClassSelection(frozenset({2}), frozenset({1}), 30)},
    ):
        class3d_module._follow(1, entry, found)
        assert class3d_module._count(entry) == 40
        assert class3d_module._chosen_star(tmp_path, 1, entry) == entry["star"]
    with pytest.raises(ValueError, match="selected_star"):
        class3d_module._data_star("/p/particles.star")
