"""Processing jobs: list them, request a reprocess, stop one."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from cryolive.config import Settings
from cryolive.db.repo import browse
from cryolive.web import files, reprocess
from cryolive.web.deps import (
    AppSettings,
    CsrfChecked,
    CurrentUser,
    DbId,
    DbSession,
    User,
    WriterSession,
    require_visit,
)
from cryolive.web.models import Job, ReprocessRequested, Stopped
from cryolive.web.routes.collections import visible_collection

router = APIRouter()


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'request'}: {e['msg']}" for e in exc.errors()
    )


def _visible_job(db: Session, user: User, auto_proc_program_id: int) -> browse.JobRow:
    found = browse.job(db, auto_proc_program_id=auto_proc_program_id)
    if found is None:
        raise HTTPException(404, f"No processing job with program {auto_proc_program_id}.")
    require_visit(db, user, found.session_id)
    return found


def _check_gain(db: Session, body: reprocess.ReprocessRequest, session_id: int) -> None:
    """Refuse (422) a gain reference outside the visit's folders, the same way whether or not
    the file exists."""
    folders = files.visit_folders(db, session_id=session_id)
    if body.gain_reference and files.inside(body.gain_reference, folders) is None:
        raise HTTPException(422, f"Reprocess not requested: gain_reference: {files.REFUSED}.")


def _record(
    writer: Session,
    settings: Settings,
    data_collection_id: int,
    body: reprocess.ReprocessRequest,
    user: User,
) -> int:
    limits = reprocess.Limits(
        open_per_collection=settings.web.reprocess_open_per_collection,
        per_user_hour=settings.web.reprocess_per_user_hour,
    )
    try:
        return reprocess.record(
            writer,
            data_collection_id=data_collection_id,
            request=body,
            login=user.login,
            limits=limits,
        )
    except reprocess.TooMany as exc:
        raise HTTPException(429, str(exc)) from exc


def _stop(db: DbSession, writer: Session, user: User, auto_proc_program_id: int) -> None:
    found = _visible_job(db, user, auto_proc_program_id)
    if found.status in browse.ENDED:
        raise HTTPException(
            409,
            f"Program {auto_proc_program_id} has already {browse.ended_phrase(found.status)}.",
        )
    reprocess.stop(
        writer,
        auto_proc_program_id=auto_proc_program_id,
        login=user.login,
        when=dt.datetime.now(dt.UTC).replace(tzinfo=None),
    )


@router.get("/api/collections/{data_collection_id}/jobs", tags=["jobs"])
def jobs_api(data_collection_id: DbId, user: CurrentUser, db: DbSession) -> list[Job]:
    """The collection's processing jobs, newest first, with status and messages."""
    visible_collection(db, user, data_collection_id)
    jobs = browse.jobs_of(db, data_collection_id=data_collection_id)
    return [Job.model_validate(j) for j in jobs]


@router.get("/api/jobs/{auto_proc_program_id}", tags=["jobs"])
def job_api(auto_proc_program_id: DbId, user: CurrentUser, db: DbSession) -> Job:
    """One processing job, with status and messages."""
    return Job.model_validate(_visible_job(db, user, auto_proc_program_id))


@router.post(
    "/api/collections/{data_collection_id}/reprocess",
    tags=["jobs"],
    status_code=201,
    dependencies=[CsrfChecked],
)
def reprocess_api(
    data_collection_id: DbId,
    body: reprocess.ReprocessRequest,
    user: CurrentUser,
    db: DbSession,
    writer: WriterSession,
    settings: AppSettings,
) -> ReprocessRequested:
    """Request a reprocess with these parameters. Only the request is recorded here: the
    pipeline picks it up and records its progress on the returned program. 429 when the
    collection has too many requests requested or running, or the caller made too many in
    the last hour (``web.reprocess_open_per_collection``, ``web.reprocess_per_user_hour``)."""
    found = visible_collection(db, user, data_collection_id)
    _check_gain(db, body, found.session_id)
    program = _record(writer, settings, data_collection_id, body, user)
    return ReprocessRequested(auto_proc_program_id=program)


@router.post(
    "/collections/{data_collection_id}/reprocess",
    include_in_schema=False,
    dependencies=[CsrfChecked],
)
async def reprocess_form(
    data_collection_id: DbId,
    request: Request,
    user: CurrentUser,
    db: DbSession,
    settings: AppSettings,
) -> RedirectResponse:
    form = await request.form()
    fields = {k: v for k, v in form.items() if k != "csrf_token" and v != ""}
    try:
        body = reprocess.ReprocessRequest.model_validate(fields)
    except ValidationError as exc:
        raise HTTPException(422, f"Reprocess not requested: {_problems(exc)}") from exc
    found = visible_collection(db, user, data_collection_id)
    _check_gain(db, body, found.session_id)
    with request.app.state.writer() as writer, writer.begin():
        _record(writer, settings, data_collection_id, body, user)
    return RedirectResponse(f"/collections/{data_collection_id}#jobs", status_code=303)


@router.post("/api/jobs/{auto_proc_program_id}/stop", tags=["jobs"], dependencies=[CsrfChecked])
def stop_api(
    auto_proc_program_id: DbId, user: CurrentUser, db: DbSession, writer: WriterSession
) -> Stopped:
    """Stop a requested, running or idle job: it is recorded (in ISPyB as failed) with the
    message "stopped by <login>", and shown as stopped."""
    _stop(db, writer, user, auto_proc_program_id)
    return Stopped(status="stopped", message=f"{browse.STOPPED_BY}{user.login}")


@router.post(
    "/jobs/{auto_proc_program_id}/stop", include_in_schema=False, dependencies=[CsrfChecked]
)
def stop_form(
    auto_proc_program_id: DbId, user: CurrentUser, db: DbSession, writer: WriterSession
) -> RedirectResponse:
    _stop(db, writer, user, auto_proc_program_id)
    found = browse.job(db, auto_proc_program_id=auto_proc_program_id)
    target = f"/collections/{found.data_collection_id}#jobs" if found else "/visits"
    return RedirectResponse(target, status_code=303)
