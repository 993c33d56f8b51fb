"""The streaming 2D service: batches fill as micrographs arrive, each batch is classified as
it grows, later batches start from earlier classes, and redelivery changes nothing."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import starfile

from cryolive.config import CurationThresholds
from cryolive.db.repo import curation, results
from cryolive.io.layout import job_dir
from cryolive.messaging.service import Context
from cryolive.records import ClassificationRecord, MotionCorrectionRecord, MovieRecord, MovieRef
from cryolive.services.class2d import class2d, rejected_in
from cryolive.services.messages import Class2DMessage, Class3DTrigger, WriteResults
from cryolive.simulate import procedural_specimen, simulate_particles, write_simulated_particles
from tests.runs import sqlite_run

CONTEXT = Context(key="k", recipe="spa-preprocess", step="class2d", attempt=0, delivery_count=0)
PER_MICROGRAPH = 80


@pytest.fixture(scope="module")
def micrographs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Eight 'micrographs' of 80 simulated particles each (3 views, box 32 at 3 Å)."""
    root = tmp_path_factory.mktemp("particles")
    stars = []
    for i in range(8):
        sim = simulate_particles(
            procedural_specimen(seed=1),
            n_particles=PER_MICROGRAPH,
            n_views=3,
            box_px=32,
            pixel_size_a=3.0,
            junk_fraction={},
            seed=i,
        )
        stars.append(write_simulated_particles(sim, root / f"mic{i}"))
    return stars


def _message(project: Path, star: Path, i: int, **settings: object) -> Class2DMessage:
    fields: dict[str, object] = {
        "movie_path": f"/visit/raw/mic{i}.tiff",
        "data_collection_id": 1,
        "program_id": 7,
        "project_dir": str(project),
        "movie_stem": f"mic{i}",
        "particles_star": str(star),
        "particles": PER_MICROGRAPH,
        "mask_diameter_a": 99.0,
        "class2d": {
            "classes": 3,
            "batch_size": 320,
            "min_particles": 150,
            "particles_per_class": 40,
            "growth": 1.5,
            "iterations": 6,
        },
    }
    fields["class2d"] |= settings  # type: ignore[operator]
    return Class2DMessage.model_validate(fields)


def _records(emits: list) -> list[ClassificationRecord]:  # type: ignore[type-arg]
    out = []
    for emit in emits:
        if emit.output == "class3d":  # the selected particles, for live 3D
            continue
        assert isinstance(emit.result, WriteResults)
        out += [r for r in emit.result.records if isinstance(r, ClassificationRecord)]
    return out


def test_batches_are_classified_as_they_grow_and_later_batches_start_from_earlier_classes(
    micrographs: list[Path], tmp_path: Path
) -> None:
    seen: list[tuple[int, int]] = []
    for i, star in enumerate(micrographs):
        records = _records(class2d(_message(tmp_path, star, i), CONTEXT))
        seen += [(r.batch_number, r.particles_in_batch) for r in records]
    # batch 1: first at 160 (>= 150), again at 240 (>= 1.5 x 160), full at 320;
    # batch 2 (from the 5th micrograph): at 160, 240 and 320; each record is sent twice
    # (when made and with the next message) so that a crash in between loses nothing.
    assert sorted(set(seen)) == [(1, 160), (1, 240), (1, 320), (2, 160), (2, 240), (2, 320)]
    assert all(seen.count(key) in (1, 2) for key in set(seen))
    job = job_dir(tmp_path, "Class2D", 7)
    state = json.loads((job / "batches.json").read_text())
    assert [b["particles"] for b in state["batches"]] == [320, 320]
    assert state["pending"] == []
    last = _records(class2d(_message(tmp_path, micrographs[-1], 7), CONTEXT))
    assert [(r.batch_number, r.particles_in_batch) for r in last] == [(2, 320)]  # resent once
    assert _records(class2d(_message(tmp_path, micrographs[-1], 7), CONTEXT)) == []
    record = last[0]
    assert record.classes_in_batch == 3 and len(record.classes) == 3
    # when it ran and how long, for the history (a resent record keeps its times)
    assert record.started_at is not None and record.duration_s is not None
    assert 0 < record.duration_s < 600
    assert abs(dt.datetime.now(dt.UTC).replace(tzinfo=None) - record.started_at) < dt.timedelta(
        minutes=10
    )
    assert sum(c.particles for c in record.classes) == 320
    assert record.movie.movie_full_path == "/visit/raw/mic7.tiff"  # the batch's latest
    for c in record.classes:
        assert Path(c.image_full_path).is_file()


def test_a_classification_claimed_by_a_dead_worker_runs_with_the_next_message(
    micrographs: list[Path], tmp_path: Path
) -> None:
    for i in range(2):  # 160 particles: one classification planned and done
        class2d(_message(tmp_path, micrographs[i], i), CONTEXT)
    job = job_dir(tmp_path, "Class2D", 7)
    state_path = job / "batches.json"
    state = json.loads(state_path.read_text())
    # a worker planned the next classification, claimed it and died before it ran
    state["pending"] = [
        {
            "batch": 1,
            "particles": 160,
            "stars": [str(s) for s in micrographs[:2]],
            "last_movie": "/visit/raw/mic1.tiff",
            "claimed_by": [__import__("socket").gethostname(), 2**22 + 12345, 0.0],
        }
    ]
    state["emitted"] = []
    state_path.write_text(json.dumps(state))
    redelivered = class2d(_message(tmp_path, micrographs[1], 1), CONTEXT)
    assert [(r.batch_number, r.particles_in_batch) for r in _records(redelivered)] == [(1, 160)]
    assert json.loads(state_path.read_text())["pending"] == []


def test_each_classification_sends_its_selected_particles_on_to_3d(
    micrographs: list[Path], tmp_path: Path
) -> None:
    emits = []
    for i in range(2):  # 160 particles: batch 1's first classification
        emits += class2d(_message(tmp_path, micrographs[i], i), CONTEXT)
    (trigger,) = [e.result for e in emits if e.output == "class3d"]
    (record,) = _records(emits)
    assert isinstance(trigger, Class3DTrigger)
    assert (trigger.batch_number, trigger.particles_in_batch) == (1, 160)
    assert trigger.movie_path == "/visit/raw/mic1.tiff"
    selected = sum(c.particles for c in record.classes if c.selected)
    rows = starfile.read(trigger.selected_star, always_dict=True)["particles"]
    assert trigger.selected_particles == selected == len(rows) > 0


def test_few_particles_use_fewer_classes(micrographs: list[Path], tmp_path: Path) -> None:
    records = []
    for i in range(2):
        records += _records(class2d(_message(tmp_path, micrographs[i], i, classes=50), CONTEXT))
    assert records and records[0].classes_in_batch == 160 // 40


def test_bad_message_is_refused() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        Class2DMessage.model_validate(
            {
                "movie_path": "m", "data_collection_id": 1, "program_id": 1, "project_dir": "p",
                "movie_stem": "m", "particles_star": "s", "particles": 1,
                "mask_diameter_a": 100.0, "batch_size": 0,
            }
        )  # fmt: skip


def test_a_batch_leaves_out_the_movies_curation_rejects_when_it_is_classified(
    micrographs: list[Path], tmp_path: Path
) -> None:
    """Movie 1 moved too much: with a total-motion threshold its particles stay out of the
    batch's classification; once the threshold is lifted the next classification has them."""
    url, sessions, dc, program = sqlite_run(tmp_path)
    with sessions.begin() as db:
        refs = [
            MovieRef(data_collection_id=dc, movie_full_path=f"/visit/raw/mic{i}.tiff")
            for i in range(3)
        ]
        results.write_result_sets(
            db,
            movies=[MovieRecord(movie=r, movie_number=i) for i, r in enumerate(refs)],
            motion_corrections=[
                MotionCorrectionRecord(movie=r, auto_proc_program_id=program, total_motion_a=m)
                for r, m in zip(refs, (10.0, 50.0, 12.0), strict=True)
            ],
        )
        curation.set_thresholds(
            db,
            data_collection_id=dc,
            limits=CurationThresholds(total_motion_max_a=20.0),
            changed_by="test",
            defaults=CurationThresholds(),
        )
    rejected = rejected_in(url, CurationThresholds())

    def send(i: int) -> list[ClassificationRecord]:
        message = _message(tmp_path, micrographs[i], i).model_copy(
            update={"data_collection_id": dc, "program_id": program}
        )
        return _records(class2d(message, CONTEXT, rejected=rejected))

    assert send(0) == []
    first = send(1)  # 160 particles picked: classified without movie 1's 80
    assert [(r.batch_number, r.particles_in_batch) for r in first] == [(1, PER_MICROGRAPH)]
    assert sum(c.particles for c in first[0].classes) == PER_MICROGRAPH
    assert first[0].movie.movie_full_path == "/visit/raw/mic0.tiff"  # the latest kept
    with sessions.begin() as db:
        curation.set_thresholds(
            db,
            data_collection_id=dc,
            limits=CurationThresholds(),
            changed_by="test",
            defaults=CurationThresholds(),
        )
    again = [r for r in send(2) if r.particles_in_batch != PER_MICROGRAPH]
    assert [(r.batch_number, r.particles_in_batch) for r in again] == [(1, 3 * PER_MICROGRAPH)]
    sessions.kw["bind"].dispose()
