"""Alerts (a visit's, the facility's), the e-mail opt-in, and pausing a data collection."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from cryolive.db.repo import alerts as alerts_repo
from cryolive.db.repo import pause, visits
from cryolive.web.deps import (
    CsrfChecked,
    CurrentUser,
    DbId,
    DbSession,
    StaffUser,
    User,
    VisitName,
    WriterSession,
    require_visit,
)
from cryolive.web.models import AlertOut, PauseState, VisitAlertsOut
from cryolive.web.routes.collections import visible_collection

router = APIRouter()


def visible_visit(db: Session, user: User, name: str) -> int:
    """The visit's BLSession id, if it exists (404) and the user may see it (403)."""
    try:
        session_id = visits.find_visit(db, visit=name)
    except ValueError as exc:
        raise HTTPException(404, str(exc)) from exc
    if session_id is None:
        raise HTTPException(404, f"No visit {name!r}.")
    require_visit(db, user, session_id)
    return session_id


@router.get("/api/visits/{visit}/alerts", tags=["alerts"])
def visit_alerts_api(visit: VisitName, user: CurrentUser, db: DbSession) -> VisitAlertsOut:
    """The visit's alerts, open and cleared, newest first, and whether its members get them
    by e-mail."""
    session_id = visible_visit(db, user, visit)
    rows = alerts_repo.alerts_of_visit(db, session_id=session_id)
    return VisitAlertsOut(
        email=alerts_repo.opted_in(db, session_id=session_id),
        alerts=[AlertOut.model_validate(r) for r in rows],
    )


@router.get("/api/alerts", tags=["alerts"])
def alerts_api(user: StaffUser, db: DbSession) -> list[AlertOut]:
    """Every visit's and the facility's alerts (staff only): open ones first."""
    return [AlertOut.model_validate(r) for r in alerts_repo.recent_alerts(db)]


@router.post("/visits/{visit}/alerts", include_in_schema=False, dependencies=[CsrfChecked])
def alerts_form(
    visit: VisitName,
    user: CurrentUser,
    db: DbSession,
    writer: WriterSession,
    email: Annotated[str, Form(max_length=8)] = "",
) -> RedirectResponse:
    session_id = visible_visit(db, user, visit)
    alerts_repo.set_opt_in(writer, session_id=session_id, enabled=email == "on", login=user.login)
    return RedirectResponse(f"/visits/{visit}#alerts", status_code=303)


def _pause_state(db: Session, data_collection_id: int) -> PauseState:
    return PauseState(
        data_collection_id=data_collection_id,
        paused=pause.paused(db, data_collection_id=data_collection_id) is not None,
        held=pause.held_count(db, data_collection_id=data_collection_id),
    )


@router.get("/api/collections/{data_collection_id}/pause", tags=["collections"])
def pause_state_api(data_collection_id: DbId, user: CurrentUser, db: DbSession) -> PauseState:
    """Whether the collection's processing is paused, and how many movies' work is held."""
    visible_collection(db, user, data_collection_id)
    return _pause_state(db, data_collection_id)


def _set(db: Session, writer: Session, user: User, data_collection_id: int, paused: bool) -> None:
    visible_collection(db, user, data_collection_id)
    if paused:
        pause.pause(writer, data_collection_id=data_collection_id, login=user.login)
    else:
        pause.resume(writer, data_collection_id=data_collection_id)


@router.post(
    "/api/collections/{data_collection_id}/pause", tags=["collections"], dependencies=[CsrfChecked]
)
def pause_api(
    data_collection_id: DbId, user: CurrentUser, db: DbSession, writer: WriterSession
) -> PauseState:
    """Pause the collection's processing: new movies are still registered, their work is
    recorded and held, not sent. Pausing a paused collection changes nothing."""
    _set(db, writer, user, data_collection_id, True)
    return _pause_state(writer, data_collection_id)


@router.post(
    "/api/collections/{data_collection_id}/resume",
    tags=["collections"],
    dependencies=[CsrfChecked],
)
def resume_api(
    data_collection_id: DbId, user: CurrentUser, db: DbSession, writer: WriterSession
) -> PauseState:
    """Resume it: the held work is sent on the pipeline's next poll (``held`` counts it
    until then)."""
    _set(db, writer, user, data_collection_id, False)
    return _pause_state(writer, data_collection_id)


@router.post(
    "/collections/{data_collection_id}/pause", include_in_schema=False, dependencies=[CsrfChecked]
)
def pause_form(
    data_collection_id: DbId, user: CurrentUser, db: DbSession, writer: WriterSession
) -> RedirectResponse:
    _set(db, writer, user, data_collection_id, True)
    return RedirectResponse(f"/collections/{data_collection_id}#jobs", status_code=303)


@router.post(
    "/collections/{data_collection_id}/resume",
    include_in_schema=False,
    dependencies=[CsrfChecked],
)
def resume_form(
    data_collection_id: DbId, user: CurrentUser, db: DbSession, writer: WriterSession
) -> RedirectResponse:
    _set(db, writer, user, data_collection_id, False)
    return RedirectResponse(f"/collections/{data_collection_id}#jobs", status_code=303)
