"""A database with one visit, data collection and automatic run, and the records of movies
picked in it: what the 2D/3D service and repository tests start from."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from cryolive.db import make_engine, session_factory, upgrade
from cryolive.db.repo import collections, visits
from cryolive.records import (
    AnyRecord,
    MotionCorrectionRecord,
    MovieRecord,
    MovieRef,
    ParticlePickerRecord,
)


def sqlite_run(tmp_path: Path) -> tuple[str, sessionmaker[Session], int, int]:
    """A new SQLite database under ``tmp_path`` holding visit bi1-1, its collection of
    ``/visit/raw/*.tiff`` and an automatic spa-preprocess run: (url, sessions, collection id,
    program id)."""
    url = f"sqlite:///{tmp_path / 'cryolive.sqlite'}"
    engine = make_engine(url)
    upgrade(engine)
    sessions = session_factory(engine)
    with sessions.begin() as db:
        session_id = visits.ensure_visit(db, visit="bi1-1", microscope="m02")
        _, dc = collections.register_data_collection(
            db,
            spec=collections.DataCollectionSpec(
                session_id=session_id, image_directory="/visit/raw", file_template="*.tiff"
            ),
        )
        _, program = collections.register_processing_job(
            db, data_collection_id=dc, recipe="spa-preprocess", request_key="auto", parameters={}
        )
    return url, sessions, dc, program


def picked(program: int, refs: list[MovieRef], *, particles: int = 100) -> list[AnyRecord]:
    """Each movie registered, motion-corrected and picked (``particles`` each) by ``program``."""
    out: list[AnyRecord] = []
    for i, ref in enumerate(refs):
        out += [
            MovieRecord(movie=ref, movie_number=i + 1),
            MotionCorrectionRecord(movie=ref, auto_proc_program_id=program),
            ParticlePickerRecord(
                movie=ref,
                motion_correction_program_id=program,
                auto_proc_program_id=program,
                number_of_particles=particles,
            ),
        ]
    return out
