"""Writing the chain of per-movie results, idempotently, on both backends."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pydantic
import pytest
import sqlalchemy as sa
from ispyb.sqlalchemy import (
    CTF,
    BLSession,
    DataCollection,
    DataCollectionGroup,
    MotionCorrection,
    Movie,
    Proposal,
    RelativeIceThickness,
)
from sqlalchemy.orm import Session

from cryolive.db import make_engine
from cryolive.db.repo import results
from cryolive.db.repo.collections import register_data_collection, register_processing_job
from cryolive.records import (
    CtfRecord,
    IceThicknessRecord,
    MotionCorrectionRecord,
    MovieRecord,
    MovieRef,
)


def _records(c: Any, n: int, *, defocus: float = 15_000.0) -> dict[str, list[object]]:
    movies, mcs, ctfs, ice = [], [], [], []
    for i in range(n):
        ref = MovieRef(
            data_collection_id=c.data_collection_id,
            movie_full_path=f"/raw/GridSquare_1/Data/FoilHole_{i}_fractions.tiff",
        )
        movies.append(MovieRecord(movie=ref, movie_number=i + 1, number_of_frames=40))
        mcs.append(
            MotionCorrectionRecord(
                movie=ref,
                auto_proc_program_id=c.motion_program_id,
                image_number=i + 1,
                total_motion_a=12.5 + i,
                micrograph_full_path=f"/processed/MotionCorr/{i}.mrc",
                patches_used_x=3,
                patches_used_y=2,
            )
        )
        common = {
            "movie": ref,
            "motion_correction_program_id": c.motion_program_id,
        }
        ctfs.append(
            CtfRecord(
                **common,
                auto_proc_program_id=c.ctf_program_id,
                estimated_defocus_a=defocus + i,
                astigmatism_a=250.0,
                astigmatism_angle_deg=30.0,
                estimated_resolution_a=3.4,
                cc_value=0.21,
                box_size=512,
            )
        )
        ice.append(
            IceThicknessRecord(
                **common,
                auto_proc_program_id=c.ice_program_id,
                minimum=0.1,
                q1=0.2,
                median=0.3,
                q3=0.4,
                maximum=0.5,
            )
        )
    return {"movies": movies, "motion_corrections": mcs, "ctfs": ctfs, "ice": ice}


def _count(session: Session, model: type, **where: object) -> int:
    query = sa.select(sa.func.count()).select_from(model)
    for name, value in where.items():
        query = query.where(getattr(model, name) == value)
    return int(session.scalar(query) or 0)


def test_chain_reads_back_through_the_ispyb_models(
    db_url: str, unique: str, collection_maker: Callable[..., Any]
) -> None:
    """Written with cryolive, committed, then read by a new engine through ispyb.sqlalchemy."""
    visit = f"bi{int(unique, 16) % 10**8}-3"
    writer = make_engine(db_url)
    with Session(writer) as session, session.begin():
        c = collection_maker(session, visit=visit)
        results.write_result_sets(session, **_records(c, 3))
    writer.dispose()

    reader = make_engine(db_url, writer=False)
    with Session(reader) as session:
        row = session.execute(
            sa.select(
                Proposal,
                BLSession,
                DataCollectionGroup,
                DataCollection,
                Movie,
                MotionCorrection,
                CTF,
            )
            .join(BLSession, BLSession.proposalId == Proposal.proposalId)
            .join(DataCollectionGroup, DataCollectionGroup.sessionId == BLSession.sessionId)
            .join(
                DataCollection,
                DataCollection.dataCollectionGroupId == DataCollectionGroup.dataCollectionGroupId,
            )
            .join(Movie, Movie.dataCollectionId == DataCollection.dataCollectionId)
            .join(MotionCorrection, MotionCorrection.movieId == Movie.movieId)
            .join(CTF, CTF.motionCorrectionId == MotionCorrection.motionCorrectionId)
            .where(BLSession.sessionId == c.session_id)
            .order_by(Movie.movieNumber)
        ).all()
        assert len(row) == 3
        proposal, bl_session, group, dc, movie, mc, ctf = row[1]
        assert (
            f"{proposal.proposalCode}{proposal.proposalNumber}-{bl_session.visit_number}" == visit
        )
        assert group.experimentTypeId == 37
        assert dc.imageDirectory.endswith("/raw/")
        assert float(dc.voltage) == 300
        assert movie.movieFullPath.endswith("FoilHole_1_fractions.tiff")
        assert movie.numberOfFrames == 40
        assert movie.movieNumber == 2
        assert mc.imageNumber == 2
        assert mc.totalMotion == pytest.approx(13.5)
        assert (mc.patchesUsedX, mc.patchesUsedY) == (3, 2)
        assert mc.dataCollectionId == dc.dataCollectionId
        assert ctf.estimatedDefocus == pytest.approx(15_001.0)
        assert ctf.astigmatismAngle == pytest.approx(30.0)
        assert ctf.boxSizeX == ctf.boxSizeY == 512
        assert ctf.autoProcProgramId == c.ctf_program_id
        ice = session.scalars(
            sa.select(RelativeIceThickness).where(
                RelativeIceThickness.motionCorrectionId == mc.motionCorrectionId
            )
        ).one()
        assert ice.median == pytest.approx(0.3)
    reader.dispose()


def test_every_upsert_twice_leaves_one_row_with_the_latest_values(
    db: Session, collection: Any
) -> None:
    first = _records(collection, 4)
    results.write_result_sets(db, **first)
    created = db.scalar(sa.select(Movie.createdTimeStamp).where(Movie.movieNumber == 1))
    again = _records(collection, 4, defocus=20_000.0)
    results.write_result_sets(db, **again)
    results.write_result_sets(db, **again)
    dc = collection.data_collection_id
    assert _count(db, Movie, dataCollectionId=dc) == 4
    assert _count(db, MotionCorrection, dataCollectionId=dc) == 4
    ids = db.scalars(
        sa.select(MotionCorrection.motionCorrectionId).where(
            MotionCorrection.dataCollectionId == dc
        )
    ).all()
    assert (
        db.scalar(
            sa.select(sa.func.count()).select_from(CTF).where(CTF.motionCorrectionId.in_(ids))
        )
        == 4
    )
    assert (
        db.scalar(
            sa.select(sa.func.count())
            .select_from(RelativeIceThickness)
            .where(RelativeIceThickness.motionCorrectionId.in_(ids))
        )
        == 4
    )
    defoci = db.scalars(
        sa.select(CTF.estimatedDefocus).where(CTF.motionCorrectionId.in_(ids))
    ).all()
    assert sorted(defoci) == [20_000.0, 20_001.0, 20_002.0, 20_003.0]
    # MariaDB rewrites Movie.createdTimeStamp on UPDATE unless told to keep it.
    assert db.scalar(sa.select(Movie.createdTimeStamp).where(Movie.movieNumber == 1)) == created


def test_registration_twice_leaves_one_job_and_one_program(db: Session, collection: Any) -> None:
    c = collection
    params = {"pixel_size_a": 1.056, "dose": 40}
    first = register_processing_job(
        db,
        data_collection_id=c.data_collection_id,
        recipe="spa-preprocess",
        request_key="r1",
        parameters=params,
    )
    second = register_processing_job(
        db,
        data_collection_id=c.data_collection_id,
        recipe="spa-preprocess",
        request_key="r1",
        parameters=params,
    )
    assert first == second
    other = register_processing_job(
        db,
        data_collection_id=c.data_collection_id,
        recipe="spa-preprocess",
        request_key="r2",
        parameters=params,
    )
    assert other != first
    from cryolive.db.repo.collections import DataCollectionSpec, job_parameters

    assert job_parameters(db, processing_job_id=first[0]) == {"dose": "40", "pixel_size_a": "1.056"}
    spec = DataCollectionSpec(session_id=c.session_id, image_directory="/visit/raw2")
    assert register_data_collection(db, spec=spec) == register_data_collection(db, spec=spec)


def test_a_result_without_its_parent_is_refused(db: Session, collection: Any) -> None:
    orphan = _records(collection, 1)["motion_corrections"]
    with pytest.raises(LookupError, match="Movie: no row recorded"):
        results.write_motion_corrections(db, records=orphan)


def test_records_refuse_out_of_range_values() -> None:
    ref = MovieRef(data_collection_id=1, movie_full_path="/x.tiff")
    with pytest.raises(pydantic.ValidationError, match="image_number"):
        MotionCorrectionRecord(movie=ref, auto_proc_program_id=1, image_number=70_000)
    with pytest.raises(pydantic.ValidationError, match="movie_full_path"):
        MovieRef(data_collection_id=1, movie_full_path="/" + "x" * 300)
    with pytest.raises(pydantic.ValidationError, match="extra"):
        MovieRecord(movie=ref, not_a_column=1)


# Run in two separate Python processes: each writes the same 30 result sets, one transaction
# per set, starting at the same moment.
_WRITER = """
import sys, time
from sqlalchemy.orm import Session
from cryolive.db import make_engine
from cryolive.records import CtfRecord, MotionCorrectionRecord, MovieRecord, MovieRef
from cryolive.db.repo import results

url, dc, mc_program, ctf_program, start = sys.argv[1:]
dc, mc_program, ctf_program, start = int(dc), int(mc_program), int(ctf_program), float(start)
engine = make_engine(url)
while time.time() < start:
    time.sleep(0.001)
for i in range(30):
    ref = MovieRef(data_collection_id=dc, movie_full_path=f"/raw/m{i}.tiff")
    with Session(engine) as session, session.begin():
        results.write_result_sets(
            session,
            movies=[MovieRecord(movie=ref, movie_number=i)],
            motion_corrections=[MotionCorrectionRecord(movie=ref, auto_proc_program_id=mc_program)],
            ctfs=[CtfRecord(movie=ref, motion_correction_program_id=mc_program,
                            auto_proc_program_id=ctf_program, estimated_defocus_a=1e4 + i)],
        )
"""


def test_two_processes_writing_the_same_results_leave_one_row_each(
    db_url: str, unique: str, collection_maker: Callable[..., Any]
) -> None:
    engine = make_engine(db_url)
    with Session(engine) as session, session.begin():
        c = collection_maker(session, visit=f"bi{int(unique, 16) % 10**8}-4")
    args = [str(v) for v in (c.data_collection_id, c.motion_program_id, c.ctf_program_id)]
    start = str(time.time() + 4.0)
    workers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, db_url, *args, start]) for _ in range(2)
    ]
    assert [worker.wait(timeout=120) for worker in workers] == [0, 0]
    with Session(engine) as session:
        dc = c.data_collection_id
        assert _count(session, Movie, dataCollectionId=dc) == 30
        assert _count(session, MotionCorrection, dataCollectionId=dc) == 30
        mc_ids = session.scalars(
            sa.select(MotionCorrection.motionCorrectionId).where(
                MotionCorrection.dataCollectionId == dc
            )
        ).all()
        assert (
            session.scalar(
                sa.select(sa.func.count())
                .select_from(CTF)
                .where(CTF.motionCorrectionId.in_(mc_ids))
            )
            == 30
        )
    engine.dispose()


def test_new_rows_get_their_own_ids_across_chunks(db: Session, collection: Any) -> None:
    # 600 movies: more than one multi-row INSERT (chunks of 500) whose ids come as a block.
    records = _records(collection, 600)["movies"]
    ids = results.write_movies(db, records=records)  # type: ignore[arg-type]
    rows = db.execute(sa.select(Movie.movieId, Movie.movieFullPath).where(Movie.movieId.in_(ids)))
    paths = {row_id: path for row_id, path in rows}
    assert len(set(ids)) == 600
    assert [paths[i] for i in ids] == [r.movie.movie_full_path for r in records]  # type: ignore[attr-defined]


def test_children_written_twice_in_the_transaction_that_made_their_parents(
    db: Session, collection: Any
) -> None:
    # The motion corrections are new in this transaction, so the first CTF write skips the
    # look-up; the second must not (it would add a second fit per motion correction).
    sets = _records(collection, 3)
    results.write_result_sets(
        db, movies=sets["movies"], motion_corrections=sets["motion_corrections"]
    )  # type: ignore[arg-type]
    results.write_result_sets(db, ctfs=sets["ctfs"])  # type: ignore[arg-type]
    again = _records(collection, 3, defocus=20_000.0)
    results.write_result_sets(db, ctfs=again["ctfs"])  # type: ignore[arg-type]
    defoci = db.scalars(
        sa.select(CTF.estimatedDefocus)
        .join(MotionCorrection, MotionCorrection.motionCorrectionId == CTF.motionCorrectionId)
        .where(MotionCorrection.dataCollectionId == collection.data_collection_id)
    ).all()
    assert sorted(defoci) == [20_000.0, 20_001.0, 20_002.0]
