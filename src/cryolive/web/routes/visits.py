"""My visits, and one visit's data collections."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from cryolive.db.repo import browse, visits
from cryolive.web.deps import CurrentUser, DbSession, User, require_visit
from cryolive.web.pages import UserPage

router = APIRouter()


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
    return page.render("visits.html", visits=_visible(db, page.user))


@router.get("/api/visits", tags=["visits"])
def visits_api(user: CurrentUser, db: DbSession) -> list[dict[str, Any]]:
    """The visits the caller may see: theirs, or every visit for staff."""
    return [asdict(v) for v in _visible(db, user)]


@router.get("/visits/{visit}", response_class=HTMLResponse, include_in_schema=False)
def visit_page(visit: str, page: UserPage, db: DbSession) -> HTMLResponse:
    found = _visit(db, page.user, visit)
    return page.render(
        "visit.html",
        visit=found,
        collections=browse.collections_of(db, session_id=found.session_id),
    )


@router.get("/api/visits/{visit}", tags=["visits"])
def visit_api(visit: str, user: CurrentUser, db: DbSession) -> dict[str, Any]:
    """A visit and its data collections (one per raw folder)."""
    found = _visit(db, user, visit)
    collections = browse.collections_of(db, session_id=found.session_id)
    return asdict(found) | {"data_collections": [asdict(c) for c in collections]}
