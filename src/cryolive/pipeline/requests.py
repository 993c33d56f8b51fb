"""Reprocessing requests and stops, through the database.

A user (web form or ``cryolive reprocess``) records a request: a ProcessingJob with
``automatic = 0``, the user's parameters, and an AutoProcProgram that has not started. The
running pipeline picks requests up on its next poll, starts them (processingStartTime set,
status NULL: running) and dispatches the recipe over the collection's registered movies. This
works the same whether the broker is embedded in the pipeline's process or RabbitMQ, and the
user needs no broker access. The user's parameters are checked when recorded (names known,
values that fit) and again as a whole run when started; a request whose parameters cannot make
a run ends failed, with the reason, instead of being tried at every poll. A stop marks the
program failed with a message saying who stopped it; the writer then discards late results of
that run and closes its work.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from ispyb.sqlalchemy import AutoProcProgram, DataCollection, ProcessingJob
from sqlalchemy.orm import Session, sessionmaker

from cryolive.db import ledger
from cryolive.db.repo.collections import (
    finish_program,
    job_parameters,
    register_processing_job,
)
from cryolive.errors import BadInputError, printable
from cryolive.io.layout import project_dir
from cryolive.io.paths import inside
from cryolive.messaging.recipe import Recipe
from cryolive.messaging.transport import Transport
from cryolive.params import (
    FLAT,
    RUN_KEYS,
    build_parameters,
    check_overrides,
    decode_stored,
    encode_overrides,
)
from cryolive.pipeline.runs import (
    Run,
    expect_movies,
    load_run,
    movies_own_values,
    publish,
    registered_movies,
)


def request_run(
    session: Session,
    *,
    data_collection_id: int,
    recipe: str,
    parameters: Mapping[str, Any],
    requested_by: str,
) -> tuple[int, int]:
    """Record a reprocessing request; return its (ProcessingJob, AutoProcProgram) ids.

    Raises
    ------
    BadInputError
        When a parameter is unknown (a typo) or its value does not fit; nothing is recorded.
    """
    stored = encode_overrides(parameters)
    if session.get(DataCollection, data_collection_id) is None:
        raise LookupError(f"data_collection_id: no data collection {data_collection_id}")
    return register_processing_job(
        session,
        data_collection_id=data_collection_id,
        recipe=recipe,
        request_key=f"request-{uuid.uuid4().hex}",
        parameters={**stored, "requested_by": json.dumps(requested_by)},
        display_name=f"{recipe} (by {requested_by})",
        automatic=False,
    )


def stop_run(session: Session, *, auto_proc_program_id: int, stopped_by: str) -> None:
    """Stop a run: its program ends as failed, with who stopped it, and its open work is
    cancelled."""
    if session.get(AutoProcProgram, auto_proc_program_id) is None:
        raise LookupError(f"auto_proc_program_id: no program {auto_proc_program_id}")
    finish_program(
        session,
        auto_proc_program_id=auto_proc_program_id,
        success=False,
        message=f"stopped by {stopped_by}",
        when=dt.datetime.now(dt.UTC),
    )
    # Its queued work is dropped by the workers (they skip ended runs) and closed here, so the
    # reconciler does not send it again.
    ledger.cancel_program(session, program_id=auto_proc_program_id, now=time.time())


def start_requested(
    sessions: sessionmaker[Session], transport: Transport, *, recipe: Recipe
) -> list[int]:
    """Start every requested run of ``recipe`` that has not started; return their programs."""
    started = []
    with sessions.begin() as session:
        pending = session.execute(
            sa.select(ProcessingJob, AutoProcProgram)
            .join(AutoProcProgram, AutoProcProgram.processingJobId == ProcessingJob.processingJobId)
            .where(
                ProcessingJob.recipe == recipe.name,
                ProcessingJob.automatic == 0,
                AutoProcProgram.processingStartTime.is_(None),
                AutoProcProgram.processingStatus.is_(None),
            )
        ).all()
        messages = []
        for job, program in pending:
            dc = session.get(DataCollection, job.dataCollectionId)
            if dc is None or not dc.imageDirectory:
                continue
            raw_dir = Path(dc.imageDirectory)
            project = project_dir(raw_dir.parent, raw_dir)
            session.execute(
                sa.update(AutoProcProgram)
                .where(AutoProcProgram.autoProcProgramId == program.autoProcProgramId)
                .values(processingStartTime=dt.datetime.now(dt.UTC))
            )
            refused = _outside_visit(session, job, visit_dir=raw_dir.parent)
            try:
                run = load_run_for_request(
                    session, job, program.autoProcProgramId, raw_dir, project, recipe=recipe
                )
            except BadInputError as exc:  # recorded once: the run ends, not retried each poll
                refused = refused or printable(f"parameters refused: {exc}", limit=1000)
            if refused:  # the web checks too; a request written by another client may not
                finish_program(
                    session,
                    auto_proc_program_id=int(program.autoProcProgramId),
                    success=False,
                    message=refused,
                    when=dt.datetime.now(dt.UTC).replace(tzinfo=None),
                )
                continue
            movies = registered_movies(session, data_collection_id=job.dataCollectionId)
            asked = job_parameters(session, processing_job_id=job.processingJobId)
            given = check_overrides(  # what the user set is theirs; the rest each movie's own
                {k: decode_stored(v) for k, v in asked.items() if k not in RUN_KEYS}
            )
            own = movies_own_values(session, data_collection_id=job.dataCollectionId, given=given)
            messages += expect_movies(session, run=run, recipe=recipe, movies=movies, own=own)
            started.append(int(program.autoProcProgramId))
    publish(transport, messages)
    return started


def _outside_visit(session: Session, job: ProcessingJob, *, visit_dir: Path) -> str:
    """Why the files a user named for a requested run are refused ("" when they lie inside
    its visit). The automatic run's own gain, found by the watcher, is not the user's."""
    for key, text in job_parameters(session, processing_job_id=job.processingJobId).items():
        if FLAT.get(key) != ("motion", "gain_path"):
            continue
        gain = decode_stored(text)
        if gain and inside(str(gain), [visit_dir]) is None:
            return f"{key}: must lie inside this visit's folder"
    return ""


def load_run_for_request(
    session: Session,
    job: ProcessingJob,
    program_id: int,
    raw_dir: Path,
    project: Path,
    *,
    recipe: Recipe,
) -> Run:
    """A requested run: the parameters of the collection's automatic run of the recipe (or,
    without one, the recipe's), overridden by the user's (stored as JSON, or as plain text by
    other clients).

    Raises
    ------
    BadInputError
        When a stored parameter (the request's or the automatic run's) is unknown or does not
        fit, or the values together make no run (say, a smaller largest diameter).
    """
    automatic = session.execute(
        sa.select(ProcessingJob.processingJobId, AutoProcProgram.autoProcProgramId)
        .join(AutoProcProgram, AutoProcProgram.processingJobId == ProcessingJob.processingJobId)
        .where(
            ProcessingJob.dataCollectionId == job.dataCollectionId,
            ProcessingJob.recipe == job.recipe,  # the automatic run of the same recipe
            ProcessingJob.automatic == 1,
        )
        .order_by(ProcessingJob.processingJobId)
    ).first()
    base = None
    if automatic is not None:
        base = load_run(
            session,
            processing_job_id=automatic[0],
            program_id=automatic[1],
            dc_id=job.dataCollectionId,
        ).parameters
    user: dict[str, Any] = {
        key: decode_stored(text)
        for key, text in job_parameters(session, processing_job_id=job.processingJobId).items()
        if key not in RUN_KEYS
    }
    parameters = build_parameters(
        base=base, recipe=recipe.parameters if base is None else None, request=user
    )
    return Run(job.dataCollectionId, job.processingJobId, program_id, raw_dir, project, parameters)
