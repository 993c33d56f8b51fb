"""The live pipeline in the embedded deployment: SQLite, the in-process broker, one process."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
import starfile
from ispyb.sqlalchemy import CTF, AutoProcProgram, DataCollection, MotionCorrection, Movie
from sqlalchemy.orm import Session

from cryolive.check import check_visit
from cryolive.config import WatcherSettings
from cryolive.db.repo import curation
from cryolive.db.repo.classes import gallery
from cryolive.export.relion import export_run
from cryolive.pipeline.requests import request_run, stop_run
from cryolive.pipeline.runtime import VisitFolder, start_pipeline
from cryolive.simulate import MovieConfig, VisitConfig, simulate_visit

# Three 1k micrographs per grid hold few particles: 2D classification starts at 20 here.
SMALL_2D = {
    "class2d_min_particles": 20,
    "class2d_particles_per_class": 10,
    "class2d_classes": 3,
    "class2d_iterations": 4,
}


def _start(db: str, visit: Path, name: str = "embedded") -> object:
    return start_pipeline(
        database_url=db,
        broker_url=f"memory://{name}",
        visits=[VisitFolder(visit, "bi23047-5", "m02")],
        poll_s=0.3,
        settle_s=1.0,
        # planted truncated movies stand still: registered after 2 s, their failure recorded
        watcher=WatcherSettings(incomplete_wait_s=2.0),
        parameters=SMALL_2D,
    )


def _classified(
    sessions: Callable[[], Session], *, collections: int, timeout_s: float = 120.0
) -> list:  # type: ignore[type-arg]
    """Wait until each of ``collections`` data collections has a 2D classification."""
    deadline = time.time() + timeout_s
    while True:
        with sessions() as session:
            ids = session.scalars(sa.select(DataCollection.dataCollectionId)).all()
            found = [gallery(session, data_collection_id=dc) for dc in ids]
            if sum(1 for batches in found if batches) >= collections:
                return [b for batches in found for b in batches]
        if time.time() > deadline:
            raise AssertionError(f"no 2D classes for {collections} collections in {timeout_s} s")
        time.sleep(0.5)


def _count(session: object, model: type) -> int:
    return int(session.scalar(sa.select(sa.func.count()).select_from(model)))  # type: ignore[attr-defined]


def test_two_grids_end_with_one_collection_each_and_one_result_per_movie_per_stage(
    sqlite_db: str, two_grid_visit: Path, visit_copy: Callable[[Path], Path], done: Callable
) -> None:
    visit = visit_copy(two_grid_visit)
    pipeline = _start(sqlite_db, visit)
    try:
        done(pipeline.sessions, movies=6)
        batches = _classified(pipeline.sessions, collections=2)
        with pipeline.sessions() as session:
            folders = sorted(session.scalars(sa.select(DataCollection.imageDirectory)))
            assert folders == [f"{visit}/raw/", f"{visit}/raw2/"]
            report = check_visit(session, visit_dir=visit)
            programs = sorted(session.scalars(sa.select(AutoProcProgram.autoProcProgramId)))
            exported = [export_run(session, program_id=p) for p in programs]
            # motion correction keeps each movie's early motion for curation (ISPyB has no column)
            early = [
                v
                for dc in session.scalars(sa.select(DataCollection.dataCollectionId))
                for v in curation.measures(session, data_collection_id=dc).early_motion_a
            ]
    finally:
        pipeline.stop()
    assert [e.micrographs for e in exported] == [3, 3]
    assert len(early) == 6 and all(v is not None and 0 <= v < 50 for v in early), early
    star = starfile.read(exported[1].ctf_star)
    assert len(star["micrographs"]) == 3 and float(star["optics"]["rlnVoltage"][0]) == 300.0
    micrographs = star["micrographs"]
    assert (micrographs["rlnDefocusU"] >= micrographs["rlnDefocusV"]).all()
    first = exported[1].ctf_star.parents[2] / micrographs["rlnMicrographName"][0]
    assert first.is_file()  # names are relative to the RELION project
    assert report.movies == 6
    assert not report.duplicates and not report.missing and not report.unexpected_failures
    assert len(report.defocus_error_a) == 6
    # Against the simulator's truth (1k movies, 8 frames, 40 e/Å²):
    assert max(report.defocus_error_pct) < 1.0
    assert max(report.drift_rmse_px) < 0.5
    # Particles flow on to streaming 2D classification: classes per raw folder, with images.
    for batch in batches:
        assert batch.batch_number == 1 and batch.classes
        assert sum(c.particles for c in batch.classes) == batch.particles
    # The processed tree is a RELION project per raw folder.
    assert list(
        (visit / "processed" / "raw2" / "MotionCorr").glob("job*/Images-Disc1/*/Data/*.mrc")
    )


def test_a_restart_registers_and_processes_nothing_twice(
    sqlite_db: str, two_grid_visit: Path, visit_copy: Callable[[Path], Path], done: Callable
) -> None:
    visit = visit_copy(two_grid_visit)
    first = _start(sqlite_db, visit, "first")
    done(first.sessions, movies=6)
    first.stop()
    second = _start(sqlite_db, visit, "second")
    try:
        time.sleep(3)  # several scans of the same folder
        done(second.sessions, movies=6)
        with second.sessions() as session:
            assert _count(session, DataCollection) == 2
            assert _count(session, Movie) == 6
            assert _count(session, MotionCorrection) == 6
            assert _count(session, CTF) == 6
    finally:
        second.stop()


def test_planted_faults_are_recorded_for_exactly_those_movies(
    sqlite_db: str, faulty_visit: Path, visit_copy: Callable[[Path], Path], done: Callable
) -> None:
    visit = visit_copy(faulty_visit)
    planted = json.loads((visit / "truth.json").read_text())["faults"]
    assert {f["kind"] for f in planted} == {"truncated", "zero_byte", "corrupt_xml", "nan_pixels"}
    pipeline = _start(sqlite_db, visit, "faulty")
    try:
        done(pipeline.sessions, movies=8)
        with pipeline.sessions() as session:
            report = check_visit(session, visit_dir=visit)
            messages = [
                m
                for (m,) in session.execute(
                    sa.text('SELECT description FROM "AutoProcProgramMessage"')
                )
            ]
    finally:
        pipeline.stop()
    assert report.planted_faults and report.faults_match, report.summary()
    assert not report.unexpected_failures and not report.missing and not report.duplicates
    assert len(report.defocus_error_a) == 8 - len(report.planted_faults)
    # Every message names the movie and says what is wrong with it.
    assert all(m.split(": ", 1)[0].endswith((".mrc", ".tiff")) for m in messages)
    assert sum("zero-byte file" in m for m in messages) == 2
    assert sum("truncated" in m for m in messages) == 2
    assert sum("NaN" in m for m in messages) == 1
    assert sum("not well-formed XML" in m for m in messages) == 1


def test_reprocess_runs_again_with_new_parameters_and_stop_ends_a_run(
    sqlite_db: str, two_grid_visit: Path, visit_copy: Callable[[Path], Path], done: Callable
) -> None:
    visit = visit_copy(two_grid_visit)
    pipeline = _start(sqlite_db, visit, "reprocess")
    try:
        done(pipeline.sessions, movies=6)
        with pipeline.sessions.begin() as session:
            dc = session.scalar(
                sa.select(DataCollection.dataCollectionId).where(
                    DataCollection.imageDirectory == f"{visit}/raw/"
                )
            )
            _, wanted = request_run(
                session,
                data_collection_id=dc,
                recipe="spa-preprocess",
                parameters={"patches_x": 3, "patches_y": 3, "ctf_defocus_step_a": 250.0},
                requested_by="alice",
            )
            _, stopped = request_run(
                session,
                data_collection_id=dc,
                recipe="spa-preprocess",
                parameters={},
                requested_by="bob",
            )
            stop_run(session, auto_proc_program_id=stopped, stopped_by="bob")
            _, foreign = request_run(  # written past the web, which would refuse it
                session,
                data_collection_id=dc,
                recipe="spa-preprocess",
                parameters={"gain_reference": "/etc/passwd"},
                requested_by="mallory",
            )
        deadline = time.time() + 240
        while time.time() < deadline:
            with pipeline.sessions() as session:
                program = session.get(AutoProcProgram, wanted)
                if program is not None and program.processingStatus is not None:
                    break
            time.sleep(0.5)
        with pipeline.sessions() as session:
            program = session.get(AutoProcProgram, wanted)
            assert program.processingStatus == 1, program.processingMessage
            redone = session.scalars(
                sa.select(MotionCorrection).where(MotionCorrection.autoProcProgramId == wanted)
            ).all()
            # the rows record the patch grid used: at most the 3 x 3 asked (these small movies
            # hold too little signal per patch, so whole frames: one patch)
            assert len(redone) == 3 and {m.patchesUsedX for m in redone} <= {1, 2, 3}
            refitted = session.scalars(sa.select(CTF).where(CTF.autoProcProgramId == wanted)).all()
            assert len(refitted) == 3
            assert {float(c.defocusStepSize) for c in refitted} == {250.0}  # the run's value
            halted = session.get(AutoProcProgram, stopped)
            assert halted.processingStatus == 0
            assert halted.processingMessage == "stopped by bob"
            refused = session.get(AutoProcProgram, foreign)
            assert refused.processingStatus == 0
            # recorded under the run parameter's name (gain_reference is the web form's)
            assert refused.processingMessage.startswith("gain_path: must lie inside")
            assert not session.scalars(
                sa.select(MotionCorrection).where(MotionCorrection.autoProcProgramId == foreign)
            ).all()
            assert _count(session, MotionCorrection) == 6 + 3
    finally:
        pipeline.stop()


def test_a_serialem_visit_is_read_from_its_mdoc_files(
    sqlite_db: str, tmp_path: Path, done: Callable
) -> None:
    visit = tmp_path / "serialem"
    simulate_visit(
        VisitConfig(
            detector="1k",
            layout="serialem",
            movie=MovieConfig.preset("easy", n_frames=8),
            movies_per_grid=2,
        ),
        visit,
    )
    pipeline = _start(sqlite_db, visit, "serialem")
    try:
        done(pipeline.sessions, movies=2)
        with pipeline.sessions() as session:
            dc = session.scalars(sa.select(DataCollection)).one()
            report = check_visit(session, visit_dir=visit)
    finally:
        pipeline.stop()
    assert dc.fileTemplate == "Frames/*.tif" and float(dc.pixelSizeOnImage) > 0
    assert report.movies == 2 and len(report.defocus_error_a) == 2
    assert not report.missing and not report.duplicates and not report.unexpected_failures
