"""Run parameters in ISPyB: one ProcessingJobParameter row per flat name, read back exactly; a
request with an unknown name is refused before anything is recorded; a request whose stored
parameters are corrupt ends failed with the reason, once, instead of failing at every poll."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from ispyb.sqlalchemy import AutoProcProgram, ProcessingJobParameter
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cryolive.cli import build_app
from cryolive.db import make_engine, session_factory
from cryolive.db.repo.collections import job_parameters, register_processing_job
from cryolive.errors import BadInputError
from cryolive.messaging.embedded import EmbeddedTransport
from cryolive.messaging.recipe import load_recipe
from cryolive.params import build_parameters
from cryolive.pipeline.requests import request_run, start_requested
from cryolive.pipeline.runs import load_run, open_run
from cryolive.pipeline.runtime import recipe_path

RECIPE = load_recipe(recipe_path("spa-preprocess"))


def test_a_run_round_trips_through_the_database_exactly(db: Session, collection: Any) -> None:
    parameters = build_parameters(
        collection={"pixel_size_a": 0.1 + 0.2, "dose_per_frame_e_per_a2": 1 / 3},
        request={"cs_mm": 0.01, "picker": "topaz", "fit_phase_shift": True, "box_px": 128},
    )
    run = open_run(
        db,
        data_collection_id=collection.data_collection_id,
        recipe=RECIPE,
        request_key="automatic",
        raw_dir=Path("/visit/raw"),
        project_dir=Path("/visit/processed/raw"),
        parameters=parameters,
        automatic=True,
    )
    rows = job_parameters(db, processing_job_id=run.processing_job_id)
    assert {k: v for k, v in rows.items() if k not in ("raw_dir", "project_dir")} == (
        parameters.stored()
    )
    again = load_run(
        db,
        processing_job_id=run.processing_job_id,
        program_id=run.program_id,
        dc_id=collection.data_collection_id,
    )
    assert again.parameters == parameters
    assert again.parameters.stored() == parameters.stored()


def test_a_request_with_an_unknown_name_records_nothing(db: Session, collection: Any) -> None:
    before = db.scalar(sa.select(sa.func.count()).select_from(ProcessingJobParameter))
    with pytest.raises(BadInputError, match="did you mean 'patches_x'"):
        request_run(
            db,
            data_collection_id=collection.data_collection_id,
            recipe=RECIPE.name,
            parameters={"patch_x": 3},
            requested_by="alice",
        )
    after = db.scalar(sa.select(sa.func.count()).select_from(ProcessingJobParameter))
    assert after == before


def test_a_request_with_a_corrupt_stored_value_ends_failed_once(
    db_url: str, collection_maker: Any
) -> None:
    engine = make_engine(db_url)
    sessions = session_factory(engine)
    visit = f"bi{uuid.uuid4().int % 10**8}-1"
    with sessions.begin() as session:
        dc = collection_maker(session, visit=visit).data_collection_id
        _, good = request_run(  # a request recorded properly …
            session, data_collection_id=dc, recipe=RECIPE.name, parameters={}, requested_by="a"
        )
        _, corrupt = register_processing_job(  # … and one another client wrote by hand
            session,
            data_collection_id=dc,
            recipe=RECIPE.name,
            request_key="by-hand",
            parameters={"patches_x": '"five"', "requested_by": "mallory"},
            automatic=False,
        )
    transport = EmbeddedTransport(f"memory://{uuid.uuid4().hex}")
    try:
        started = start_requested(sessions, transport, recipe=RECIPE)
        assert good in started and corrupt not in started
        assert start_requested(sessions, transport, recipe=RECIPE) == []  # not tried again
        with sessions() as session:
            program = session.get(AutoProcProgram, corrupt)
            assert program is not None and program.processingStatus == 0
            message = str(program.processingMessage)
        assert message.startswith("parameters refused: ")
        assert "patches_x (motion.patches_x)" in message
    finally:
        engine.dispose()


def test_cryolive_reprocess_refuses_a_typo_with_the_name_meant(sqlite_url: str) -> None:
    result = CliRunner().invoke(
        build_app(),
        ["reprocess", "1", "--param", "ctf_max_resolutoin_a=4"],
        env={"CRYOLIVE_DATABASE_URL": sqlite_url},
    )
    assert result.exit_code == 2
    said = " ".join(result.output.replace("│", " ").split())  # the error box's borders
    assert "ctf_max_resolutoin_a: not a run parameter" in said
    assert "did you mean 'ctf_max_resolution_a'?" in said
