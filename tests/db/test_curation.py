"""Exposure curation: thresholds on the recorded results choose the accepted movies, a manual
decision overrides them, and a change of thresholds re-selects without new results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import starfile
from pydantic import ValidationError
from sqlalchemy.orm import Session

from cryolive.config import CurationThresholds
from cryolive.db.models import CurationDecision
from cryolive.db.repo import collections, curation, results
from cryolive.export.relion import export_run
from cryolive.records import (
    CtfRecord,
    IceThicknessRecord,
    MotionCorrectionRecord,
    MovieRecord,
    MovieRef,
    ParticlePickerRecord,
)

NONE = CurationThresholds()
# movie: total motion Å, early motion Å, defocus Å, astigmatism Å, resolution Å, fom, ice, picks
PLANTED = [
    (10.0, 2.0, 10_000.0, 100.0, 3.5, 0.30, 1.05, 120),
    (40.0, 9.0, 15_000.0, 300.0, 4.0, 0.25, 1.10, 80),
    (12.0, 2.5, 30_000.0, 150.0, 8.0, 0.05, 1.40, 10),
    (15.0, 3.0, 20_000.0, 900.0, 5.0, 0.20, 1.02, 200),
]


def _write(db: Session, c: Any, planted: list[tuple[Any, ...]] = PLANTED) -> list[str]:
    dc = c.data_collection_id
    refs = [MovieRef(data_collection_id=dc, movie_full_path=f"/raw/m_{i}.tiff") for i in range(4)]

    def on_mc(program: int) -> dict[str, int]:
        return {
            "motion_correction_program_id": c.motion_program_id,
            "auto_proc_program_id": program,
        }

    results.write_result_sets(
        db,
        movies=[MovieRecord(movie=r, movie_number=i) for i, r in enumerate(refs)],
        motion_corrections=[
            MotionCorrectionRecord(
                movie=r,
                auto_proc_program_id=c.motion_program_id,
                total_motion_a=p[0],
                comments=json.dumps({"early_motion_a": p[1]}),
                micrograph_full_path=f"/proc/m_{i}.mrc",
            )
            for i, (r, p) in enumerate(zip(refs, planted, strict=True))
        ],
        ctfs=[
            CtfRecord(
                movie=r,
                **on_mc(c.ctf_program_id),
                estimated_defocus_a=p[2],
                astigmatism_a=p[3],
                estimated_resolution_a=p[4],
                cc_value=p[5],
            )
            for r, p in zip(refs, planted, strict=True)
        ],
        ice=[
            IceThicknessRecord(
                movie=r, **on_mc(c.ice_program_id), minimum=1, q1=1, median=p[6], q3=2, maximum=2
            )
            for r, p in zip(refs, planted, strict=True)
        ],
        picks=[
            ParticlePickerRecord(movie=r, **on_mc(c.ctf_program_id), number_of_particles=p[7])
            for r, p in zip(refs, planted, strict=True)
        ],
    )
    return [r.movie_full_path for r in refs]


def test_thresholds_choose_the_accepted_movies_and_a_change_reselects(
    db: Session, collection: Any
) -> None:
    dc = collection.data_collection_id
    _write(db, collection)
    assert curation.decide(db, data_collection_id=dc, defaults=NONE).accepted == [True] * 4

    cases = [
        ({"total_motion_max_a": 20.0}, [True, False, True, True], "total_motion"),
        ({"early_motion_max_a": 5.0}, [True, False, True, True], "early_motion"),
        ({"defocus_min_um": 0.5, "defocus_max_um": 2.5}, [True, True, False, True], "defocus"),
        ({"astigmatism_max_a": 500.0}, [True, True, True, False], "astigmatism"),
        ({"ctf_resolution_max_a": 6.0}, [True, True, False, True], "ctf_resolution"),
        ({"ctf_fom_min": 0.22}, [True, True, False, False], "ctf_fom"),
        ({"ice_min": 1.03, "ice_max": 1.2}, [True, True, False, False], "ice"),
        ({"particles_min": 50, "particles_max": 150}, [True, True, False, False], "particles"),
    ]
    for bounds, expected, reason in cases:
        cur = curation.set_thresholds(
            db,
            data_collection_id=dc,
            limits=CurationThresholds(**bounds),
            changed_by="fed",
            defaults=NONE,
        )
        assert cur.accepted == expected, bounds
        assert all(reason in rs for ok, rs in zip(cur.accepted, cur.reasons, strict=True) if not ok)
        assert cur.counts()["by_reason"][reason] == expected.count(False)
        stored = db.execute(
            sa.select(CurationDecision.accepted, CurationDecision.reasons)
            .where(CurationDecision.data_collection_id == dc)
            .order_by(CurationDecision.movie_id)
        ).all()
        assert [bool(a) for a, _ in stored] == expected
        assert [json.loads(r) for _, r in stored] == cur.reasons

    both = curation.set_thresholds(
        db,
        data_collection_id=dc,
        limits=CurationThresholds(total_motion_max_a=20.0, ctf_resolution_max_a=6.0),
        changed_by="fed",
        defaults=NONE,
    )
    assert both.accepted == [True, False, False, True]
    assert both.counts() | {"by_reason": None} == {
        "movies": 4,
        "accepted": 2,
        "rejected": 2,
        "by_reason": None,
    }
    again = curation.evaluate(db, data_collection_id=dc, defaults=NONE)
    assert again.own and again.changed_by == "fed" and again.accepted == both.accepted


def test_facility_defaults_apply_until_the_collection_has_its_own(
    db: Session, collection: Any
) -> None:
    dc = collection.data_collection_id
    _write(db, collection)
    strict = CurationThresholds(total_motion_max_a=12.0)
    cur = curation.evaluate(db, data_collection_id=dc, defaults=strict)
    assert not cur.own and cur.accepted == [True, False, True, False]
    own = curation.set_thresholds(
        db, data_collection_id=dc, limits=NONE, changed_by=None, defaults=strict
    )
    assert own.own and own.accepted == [True] * 4


def test_manual_decisions_override_the_thresholds_and_survive_a_change(
    db: Session, collection: Any
) -> None:
    dc = collection.data_collection_id
    _write(db, collection)
    curation.set_thresholds(
        db,
        data_collection_id=dc,
        limits=CurationThresholds(total_motion_max_a=20.0),
        changed_by="fed",
        defaults=NONE,
    )
    ids = curation.measures(db, data_collection_id=dc).movie_id
    cur = curation.set_manual(db, movie_id=ids[1], manual="accept", by="fed", defaults=NONE)
    cur = curation.set_manual(db, movie_id=ids[0], manual="reject", by="fed", defaults=NONE)
    assert cur.accepted == [False, True, True, True]
    assert cur.reasons[0] == ["manual"] and cur.reasons[1] == ["total_motion"]
    cur = curation.set_thresholds(
        db, data_collection_id=dc, limits=NONE, changed_by="fed", defaults=NONE
    )
    assert cur.accepted == [False, True, True, True]
    cur = curation.set_manual(db, movie_id=ids[0], manual=None, by="fed", defaults=NONE)
    assert cur.accepted == [True] * 4
    with pytest.raises(LookupError, match="movie_id"):
        curation.set_manual(db, movie_id=10**9, manual="accept", by=None, defaults=NONE)


def test_a_measure_not_yet_recorded_rejects_nothing(db: Session, collection: Any) -> None:
    dc = collection.data_collection_id
    ref = MovieRef(data_collection_id=dc, movie_full_path="/raw/only.tiff")
    results.write_result_sets(db, movies=[MovieRecord(movie=ref, movie_number=1)])
    strict = CurationThresholds(total_motion_max_a=0.0, ctf_fom_min=1.0, particles_min=1000)
    cur = curation.evaluate(db, data_collection_id=dc, defaults=strict)
    assert cur.accepted == [True] and cur.measures.total_motion_a == [None]


@pytest.mark.parametrize(
    ("bounds", "message"),
    [
        ({"defocus_min_um": 3.0, "defocus_max_um": 1.0}, "defocus_min_um"),
        ({"total_motion_max_a": -1.0}, "total_motion_max_a"),
        ({"ice_max": float("nan")}, "ice_max"),
        ({"particle_min": 3}, "particle_min"),
    ],
)
def test_bad_thresholds_are_refused_naming_the_field(bounds: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CurationThresholds(**bounds)


def test_the_relion_export_of_a_run_leaves_out_rejected_movies(
    db: Session, collection: Any, tmp_path: Path
) -> None:
    c = collection
    _, program = collections.register_processing_job(
        db,
        data_collection_id=c.data_collection_id,
        recipe="spa-preprocess",
        request_key="export",
        parameters={"project_dir": str(tmp_path)},
    )
    run = type(c)(c.session_id, c.data_collection_id, program, program, program)
    _write(db, run)
    curation.set_thresholds(
        db,
        data_collection_id=c.data_collection_id,
        limits=CurationThresholds(total_motion_max_a=20.0),
        changed_by="fed",
        defaults=NONE,
    )
    done = export_run(db, program_id=program)
    assert (done.micrographs, done.rejected) == (3, 1)
    motion = starfile.read(done.motion_star)["micrographs"]
    assert list(motion["rlnMicrographName"]) == ["/proc/m_0.mrc", "/proc/m_2.mrc", "/proc/m_3.mrc"]
    ctf = starfile.read(done.ctf_star)["micrographs"]
    assert len(ctf) == 3
