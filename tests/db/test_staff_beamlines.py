"""The staff area shows electron microscopes only: an ISPyB shared with MX beamlines (i03 …)
keeps their visits, failures and programs out of it."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.orm import Session

from cryolive.db.repo import browse, collections, results, staff, visits
from cryolive.records import MotionCorrectionRecord, MovieRecord, MovieRef

NOW = dt.datetime(2026, 11, 20, 12, 30)


def _visit_with_a_failure(session: Session, *, beamline: str) -> str:
    name = f"bi{uuid.uuid4().int % 10**8}-1"
    session_id = visits.ensure_visit(
        session, visit=name, microscope=beamline, start=NOW - dt.timedelta(hours=2)
    )
    _, dc_id = collections.register_data_collection(
        session,
        spec=collections.DataCollectionSpec(session_id=session_id, image_directory=f"/{name}/raw"),
    )
    _, program_id = collections.register_processing_job(
        session, data_collection_id=dc_id, recipe="spa", request_key="auto", parameters={}
    )
    ref = MovieRef(data_collection_id=dc_id, movie_full_path=f"/{name}/raw/1.tiff")
    results.write_movies(
        session, records=[MovieRecord(movie=ref, created=NOW - dt.timedelta(minutes=30))]
    )
    results.write_motion_corrections(
        session, records=[MotionCorrectionRecord(movie=ref, auto_proc_program_id=program_id)]
    )
    collections.add_program_message(
        session, auto_proc_program_id=program_id, severity="ERROR", message="no gain"
    )
    collections.finish_program(
        session, auto_proc_program_id=program_id, success=False, message="failed", when=NOW
    )
    return name


def _shown(session: Session, beamlines: list[str]) -> dict[str, set[str]]:
    return {
        "microscopes": set(browse.microscopes(session, now=NOW, beamlines=beamlines)),
        "failures": {v for v, _ in browse.failures(session, beamlines=beamlines)},
        "collection_failures": {
            f.visit for f in staff.recent_failures(session, beamlines=beamlines)
        },
        "throughput": {
            t.microscope for t in staff.throughput(session, until=NOW, beamlines=beamlines)
        },
    }


def test_staff_views_show_the_em_microscopes_only(db: Session) -> None:
    em = _visit_with_a_failure(db, beamline="m02")
    mx = _visit_with_a_failure(db, beamline="i03")
    shown = _shown(db, [])
    assert "m02" in shown["microscopes"] and "i03" not in shown["microscopes"]
    assert em in shown["failures"] and mx not in shown["failures"]
    assert em in shown["collection_failures"] and mx not in shown["collection_failures"]
    assert shown["throughput"] == {"m02"}


def test_a_facility_names_its_own_microscopes(db: Session) -> None:
    _visit_with_a_failure(db, beamline="m02")
    krios = _visit_with_a_failure(db, beamline="krios1")
    shown = _shown(db, ["krios1"])
    assert shown["microscopes"] == {"krios1"}
    assert shown["failures"] == shown["collection_failures"] == {krios}
    assert shown["throughput"] == {"krios1"}
