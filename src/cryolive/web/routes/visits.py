"""My visits, and one visit's data collections."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from cryolive.config import Settings
from cryolive.db.repo import alerts, browse, manual, visits
from cryolive.web.deps import (
    AppSettings,
    CsrfChecked,
    CurrentUser,
    DbSession,
    User,
    VisitName,
    WriterSession,
    require_visit,
)
from cryolive.web.models import Registered, Visit, VisitDetail
from cryolive.web.pages import UserPage
from cryolive.web.register import RegisterRequest, raw_folder, visit_folder

router = APIRouter()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _visible(db: Session, user: User) -> list[browse.VisitRow]:
    return browse.visits_among(
        db, session_ids=visits.visible_session_ids(db, person_id=user.person_id)
    )


def _visit(db: Session, user: User, name: str) -> browse.VisitRow:
    try:
        session_id = visits.find_visit(db, visit=name)
    except ValueError as exc:
        raise HTTPException(404, str(exc)) from exc
    if session_id is None:
        raise HTTPException(404, f"No visit {name!r}.")
    require_visit(db, user, session_id)
    found = browse.visit(db, session_id=session_id)
    assert found is not None
    return found


@router.get("/visits", response_class=HTMLResponse, include_in_schema=False)
def visits_page(page: UserPage, db: DbSession) -> HTMLResponse:
    return page.render("visits.html", visits=_visible(db, page.user), now=_now())


@router.get("/api/visits", tags=["visits"])
def visits_api(user: CurrentUser, db: DbSession) -> list[Visit]:
    """The visits the caller may see: theirs, or every visit for staff, with their status,
    movie count and the time of their newest movie."""
    now = _now()
    return [
        Visit.model_validate(asdict(v) | {"status": v.state_at(now)}) for v in _visible(db, user)
    ]


@router.get("/visits/{visit}", response_class=HTMLResponse, include_in_schema=False)
def visit_page(visit: VisitName, page: UserPage, db: DbSession) -> HTMLResponse:
    found = _visit(db, page.user, visit)
    return page.render(
        "visit.html",
        visit=found,
        collections=browse.collections_of(db, session_id=found.session_id),
        visit_dir=visit_folder(page.request.app.state.settings.web.visit_folder, found),
        alerts=alerts.alerts_of_visit(db, session_id=found.session_id),
        alerts_email=alerts.opted_in(db, session_id=found.session_id),
    )


@router.get("/api/visits/{visit}", tags=["visits"])
def visit_api(visit: VisitName, user: CurrentUser, db: DbSession) -> VisitDetail:
    """A visit and its data collections (one per raw folder)."""
    found = _visit(db, user, visit)
    collections = browse.collections_of(db, session_id=found.session_id)
    return VisitDetail.model_validate(
        asdict(found)
        | {"status": found.state_at(_now()), "data_collections": [asdict(c) for c in collections]}
    )


def _register(
    writer: Session, settings: Settings, user: User, found: browse.VisitRow, body: RegisterRequest
) -> int:
    try:
        folder = raw_folder(body.folder, visit_folder(settings.web.visit_folder, found))
        _, collection_id = manual.register_by_hand(
            writer,
            session_id=found.session_id,
            raw_dir=folder,
            optics=body.optics(login=user.login),
        )
    except manual.AlreadyRegistered as exc:
        raise HTTPException(409, str(exc)) from exc
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    return collection_id


@router.post(
    "/api/visits/{visit}/collections",
    tags=["visits"],
    status_code=201,
    dependencies=[CsrfChecked],
)
def register_api(
    visit: VisitName,
    body: RegisterRequest,
    user: CurrentUser,
    db: DbSession,
    writer: WriterSession,
    settings: AppSettings,
) -> Registered:
    """Register a data collection by hand (a raw folder of the visit, with its optics) before
    its movies arrive; the watcher then processes the folder's movies into it, using these
    optics for movies without metadata. 409 when the folder is a data collection already."""
    found = _visit(db, user, visit)
    return Registered(data_collection_id=_register(writer, settings, user, found, body))


@router.post("/visits/{visit}/collections", include_in_schema=False, dependencies=[CsrfChecked])
async def register_form(
    visit: VisitName, request: Request, user: CurrentUser, db: DbSession, settings: AppSettings
) -> RedirectResponse:
    form = await request.form()
    fields = {k: v for k, v in form.items() if k != "csrf_token" and v != ""}
    try:
        body = RegisterRequest.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'request'}: {e['msg']}" for e in exc.errors()
        )
        raise HTTPException(422, f"Data collection not registered: {problems}") from exc
    found = _visit(db, user, visit)
    with request.app.state.writer() as writer, writer.begin():
        collection_id = _register(writer, settings, user, found, body)
    return RedirectResponse(f"/collections/{collection_id}", status_code=303)
