"""The staff area: microscopes and their live visits, and failed processing."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse

from cryolive.db.repo import browse
from cryolive.web.deps import DbSession, StaffUser, staff_user
from cryolive.web.pages import UserPage

router = APIRouter()
Limit = Annotated[int, Query(ge=1, le=1000)]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@router.get("/staff", response_class=HTMLResponse, include_in_schema=False)
def staff_page(page: UserPage, db: DbSession, limit: Limit = 100) -> HTMLResponse:
    staff_user(page.user)
    return page.render(
        "staff.html",
        microscopes=browse.microscopes(db, now=_now()),
        failures=browse.failures(db, limit=limit),
    )


@router.get("/api/staff/microscopes", tags=["staff"])
def microscopes_api(user: StaffUser, db: DbSession) -> dict[str, list[dict[str, Any]]]:
    """Each microscope's visits, newest first, with whether each is live now."""
    return {
        name: [jsonable_encoder(asdict(v)) | {"live": live} for v, live in rows]
        for name, rows in browse.microscopes(db, now=_now()).items()
    }


@router.get("/api/staff/failures", tags=["staff"])
def failures_api(user: StaffUser, db: DbSession, limit: Limit = 100) -> list[dict[str, Any]]:
    """The latest failed programs (status 0) of every visit, with their messages."""
    return [
        jsonable_encoder(asdict(job)) | {"visit": visit}
        for visit, job in browse.failures(db, limit=limit)
    ]
