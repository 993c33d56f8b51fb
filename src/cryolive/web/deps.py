"""FastAPI dependencies, as typed aliases: the database, the user, permission and CSRF checks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi import Path as PathParam
from ispyb.sqlalchemy import Person
from sqlalchemy.orm import Session, sessionmaker

from cryolive.config import Settings
from cryolive.db.repo import visits
from cryolive.web.auth import LoginThrottle, SessionCookies, WebSession


@dataclass(frozen=True)
class User:
    person_id: int
    login: str
    name: str
    staff: bool


class NotLoggedIn(Exception):
    """Raised by :func:`current_user`; pages answer with the login page, the API with 401."""


def _state_sessions(request: Request, name: str) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = getattr(request.app.state, name)
    return factory


def get_db(request: Request) -> Iterator[Session]:
    """A read-only session (the web server's reader)."""
    with _state_sessions(request, "reader")() as session:
        yield session


def get_writer(request: Request) -> Iterator[Session]:
    """A session for the few writes users make (job requests, stops); commits on success."""
    with _state_sessions(request, "writer")() as session, session.begin():
        yield session


def get_cookies(request: Request) -> SessionCookies:
    cookies: SessionCookies = request.app.state.cookies
    return cookies


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_throttle(request: Request) -> LoginThrottle:
    throttle: LoginThrottle = request.app.state.throttle
    return throttle


# Every database id a route takes: a positive 64-bit integer (a larger one is a 422, not a
# database overflow).
MAX_ID = 2**63 - 1
DbId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="A database id.")]
# A visit's name (``bi23047-100``), bounded so a huge one never reaches the database.
VisitName = Annotated[str, PathParam(min_length=1, max_length=64, description="A visit.")]

# At most READERS requests hold a reader session at once; the others wait without a worker
# thread. Otherwise requests that hold pooled connections could wait for threads that are all
# taken by requests waiting for connections (the pool holds 15; live updates use 3 more).
READERS = 10
LIVE_READERS = 3
DbSession = Annotated[Session, Depends(get_db, scope="function", max_concurrency=READERS)]
WriterSession = Annotated[Session, Depends(get_writer, scope="function", max_concurrency=2)]
Cookies = Annotated[SessionCookies, Depends(get_cookies)]
AppSettings = Annotated[Settings, Depends(get_settings)]
Throttle = Annotated[LoginThrottle, Depends(get_throttle)]


def web_session(request: Request, cookies: Cookies) -> WebSession | None:
    return cookies.load(request)


MaybeSession = Annotated[WebSession | None, Depends(web_session)]


def current_user(session: MaybeSession, db: DbSession, cookies: Cookies) -> User:
    if session is None or session.person_id is None:
        raise NotLoggedIn
    if not cookies.is_live(db, session):  # logged out, password changed or staff revoked
        raise NotLoggedIn
    person = db.get(Person, session.person_id)
    if person is None:
        raise NotLoggedIn
    name = " ".join(p for p in (person.givenName, person.familyName) if p) or str(person.login)
    return User(
        person_id=session.person_id,
        login=str(person.login),
        name=name,
        staff=visits.is_staff(db, person_id=session.person_id),
    )


CurrentUser = Annotated[User, Depends(current_user)]


def staff_user(user: CurrentUser) -> User:
    if not user.staff:
        raise HTTPException(403, "This page is for facility staff (em_admin) only.")
    return user


StaffUser = Annotated[User, Depends(staff_user)]


def require_visit(db: Session, user: User, session_id: int) -> None:
    """Refuse (403) a user who may not see visit ``session_id``."""
    if not visits.can_see_visit(db, person_id=user.person_id, session_id=session_id):
        raise HTTPException(403, "You are not a member of this visit.")


async def check_csrf(request: Request, session: MaybeSession, cookies: Cookies) -> None:
    """Refuse (403) a state-changing request without this session's CSRF token."""
    token = request.headers.get("x-csrf-token")
    if token is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get("csrf_token")
        token = value if isinstance(value, str) else None
    if session is None or session.person_id is None:
        raise NotLoggedIn
    if not cookies.csrf_ok(session, token):
        raise HTTPException(403, "Missing or wrong CSRF token: reload the page and try again.")


CsrfChecked = Depends(check_csrf)
