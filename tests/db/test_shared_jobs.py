"""A processing run is its data collection, recipe and parameters: a second run with the same
ones reuses the ProcessingJob/AutoProcProgram rows (cryolive's own, or another ISPyB client's),
with other parameters it gets new ones. On SQLite, cryolive's MariaDB and the published schema.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import sqlalchemy as sa
from ispyb.sqlalchemy import AutoProcProgram, ProcessingJob, ProcessingJobParameter
from sqlalchemy.orm import Session

from cryolive.db import make_engine
from cryolive.db.repo import collections, visits
from cryolive.messaging.recipe import load_recipe, recipe_path
from cryolive.params import build_parameters
from cryolive.pipeline.runs import open_run

RECIPE = load_recipe(recipe_path("spa-preprocess"))
FIRST = build_parameters(collection={"pixel_size_a": 1.06, "dose_per_frame_e_per_a2": 1.0})
OTHER = build_parameters(collection={"pixel_size_a": 1.06, "dose_per_frame_e_per_a2": 1.5})


def _collection(session: Session) -> tuple[int, Path]:
    visit = f"bi{uuid.uuid4().int % 10**8}-1"
    session_id = visits.ensure_visit(session, visit=visit, microscope="m02")
    raw = Path(f"/dls/m02/data/2026/{visit}/raw")
    _, dc_id = collections.register_data_collection(
        session,
        spec=collections.DataCollectionSpec(
            session_id=session_id, image_directory=f"{raw}/", voltage_kv=300, pixel_size_a=1.06
        ),
    )
    return dc_id, raw


def _open(session: Session, dc_id: int, raw: Path, parameters, **kw) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    run = open_run(
        session,
        data_collection_id=dc_id,
        recipe=RECIPE,
        request_key=kw.pop("request_key", "automatic"),
        raw_dir=raw,
        project_dir=raw.parent / "processed" / "raw",
        parameters=parameters,
        automatic=True,
        **kw,
    )
    return run.processing_job_id, run.program_id


def _jobs(session: Session, dc_id: int) -> int:
    return int(
        session.scalar(
            sa.select(sa.func.count())
            .select_from(ProcessingJob)
            .where(ProcessingJob.dataCollectionId == dc_id)
        )
        or 0
    )


def _stored(session: Session, job_id: int) -> dict[str, str]:
    return collections.job_parameters(session, processing_job_id=job_id)


def _same_and_other_parameters(session: Session) -> None:
    dc_id, raw = _collection(session)
    first = _open(session, dc_id, raw, FIRST)
    assert _open(session, dc_id, raw, FIRST) == first  # a second run, same parameters
    other = _open(session, dc_id, raw, OTHER)
    assert other[0] != first[0] and other[1] != first[1]
    # the first run's record is not rewritten by the second
    assert _stored(session, first[0])["dose_per_frame_e_per_a2"] == "1.0"
    assert _stored(session, other[0])["dose_per_frame_e_per_a2"] == "1.5"
    assert _open(session, dc_id, raw, OTHER) == other
    assert _open(session, dc_id, raw, FIRST) == first
    # a restart that has not read its parameters yet takes the run of its key
    assert _open(session, dc_id, raw, build_parameters(), reopen=True) == first
    assert _jobs(session, dc_id) == 2


def _another_client_first(session: Session) -> None:
    """Another client (the ``ispyb`` package's models, as Murfey writes) registered the job,
    its parameters and its program; cryolive's run with the same recipe and parameters
    takes them, one with other parameters does not."""
    dc_id, raw = _collection(session)
    project = raw.parent / "processed" / "raw"
    stored = {**FIRST.stored(), "raw_dir": str(raw), "project_dir": str(project)}
    job = ProcessingJob(dataCollectionId=dc_id, recipe=RECIPE.name, automatic=1)
    session.add(job)
    session.flush()
    for name, value in stored.items():
        session.add(
            ProcessingJobParameter(
                processingJobId=job.processingJobId, parameterKey=name, parameterValue=value
            )
        )
    # (a core insert: the published schema lacks a column the package's model has, jobUuid)
    program = session.execute(
        sa.insert(AutoProcProgram.__table__).values(
            processingJobId=job.processingJobId, processingPrograms="murfey"
        )
    )
    theirs = (int(job.processingJobId), int(program.inserted_primary_key[0]))

    assert _open(session, dc_id, raw, OTHER, request_key="cli") != theirs
    assert _open(session, dc_id, raw, FIRST) == theirs
    assert _open(session, dc_id, raw, FIRST) == theirs
    assert _jobs(session, dc_id) == 2
    rows = session.scalar(
        sa.select(sa.func.count())
        .select_from(ProcessingJobParameter)
        .where(ProcessingJobParameter.processingJobId == theirs[0])
    )
    assert rows == len(stored)  # their parameter rows reused, not doubled
    programs = session.scalars(
        sa.select(AutoProcProgram.processingPrograms).where(
            AutoProcProgram.processingJobId == theirs[0]
        )
    ).all()
    assert len(programs) == 1


def test_a_run_is_its_recipe_and_parameters(db: Session) -> None:
    _same_and_other_parameters(db)


def test_a_job_another_client_wrote_is_reused_by_its_parameters(db: Session) -> None:
    _another_client_first(db)


def test_jobs_shared_on_a_facility_ispyb(real_ispyb_upgraded_url: str) -> None:
    engine = make_engine(real_ispyb_upgraded_url)
    try:
        for scenario in (_same_and_other_parameters, _another_client_first):
            with Session(engine) as session, session.begin():
                scenario(session)
    finally:
        engine.dispose()
