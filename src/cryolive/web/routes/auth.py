"""Logging in and out, and who the caller is."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from cryolive.web.auth import Authenticator
from cryolive.web.deps import (
    Cookies,
    CsrfChecked,
    CurrentUser,
    DbSession,
    MaybeSession,
    NotLoggedIn,
    Throttle,
    WriterSession,
    current_user,
)
from cryolive.web.models import Me

router = APIRouter()


def _safe_next(target: str) -> str:
    """Only a path on this site (no scheme, no host, no ``//``) is a place to go after login."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/visits"


def _login_page(
    request: Request,
    cookies: Cookies,
    session: MaybeSession,
    *,
    next_: str,
    error: str,
    status: int,
) -> HTMLResponse:
    fresh = session is None or session.person_id is not None
    if fresh:
        session = cookies.new(person_id=None)
    assert session is not None
    templates: Jinja2Templates = request.app.state.templates
    response = templates.TemplateResponse(
        request,
        "login.html",
        {
            "user": None,
            "next": _safe_next(next_),
            "error": error,
            "csrf": cookies.csrf_token(session),
        },
        status_code=status,
    )
    if fresh:
        cookies.store(request, response, session)
    return response


@router.get("/", include_in_schema=False)
def home() -> RedirectResponse:
    return RedirectResponse("/visits", status_code=303)


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_form(
    request: Request,
    cookies: Cookies,
    session: MaybeSession,
    db: DbSession,
    next: Annotated[str, Query(max_length=512)] = "/visits",
) -> HTMLResponse:
    """The login form; to someone logged in already (say, in another tab), a page that says
    so with a link on, and their session left as it is: a new form would end it."""
    try:
        user = current_user(session, db, cookies)
    except NotLoggedIn:
        return _login_page(request, cookies, session, next_=next, error="", status=200)
    assert session is not None
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request,
        "login.html",
        {"user": user, "next": _safe_next(next), "csrf": cookies.csrf_token(session)},
    )


@router.post("/login", response_class=HTMLResponse, include_in_schema=False)
def login(
    request: Request,
    db: DbSession,
    cookies: Cookies,
    session: MaybeSession,
    throttle: Throttle,
    login: Annotated[str, Form(max_length=45)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=512)] = "/visits",
) -> Response:
    def again(error: str, status: int) -> HTMLResponse:
        return _login_page(request, cookies, session, next_=next, error=error, status=status)

    if not cookies.csrf_ok(session, csrf_token):
        return again("Your login form had expired: please try again.", 403)
    # the client as the connection (or a trusted proxy, see TrustedProxies) gives it
    keys = throttle.keys(request.client.host if request.client else "?", login)
    wait = throttle.retry_after(*keys)
    if wait > 0:
        refused = again(f"Too many failed logins: try again in {int(wait) + 1} s.", 429)
        refused.headers["Retry-After"] = str(int(wait) + 1)
        return refused
    authenticator: Authenticator = request.app.state.authenticator
    person_id = authenticator.authenticate(db, login=login, password=password)
    if person_id is None:
        throttle.failed(*keys)
        return again("Wrong login or password.", 401)
    throttle.succeeded(keys[0])
    response = RedirectResponse(_safe_next(next), status_code=303)
    with request.app.state.writer.begin() as writer:  # only now: failed logins write nothing
        cookies.issue(request, response, writer, person_id=person_id)
    return response


@router.post("/logout", include_in_schema=False, dependencies=[CsrfChecked])
def logout(cookies: Cookies, session: MaybeSession, writer: WriterSession) -> RedirectResponse:
    """End the session on the server (a copy of the cookie is no good afterwards) and in the
    browser."""
    response = RedirectResponse("/login", status_code=303)
    cookies.end(writer, response, session)
    return response


@router.get("/api/me", tags=["auth"])
def me(user: CurrentUser, cookies: Cookies, session: MaybeSession) -> Me:
    """The logged-in person, and the CSRF token their API calls that change things send."""
    assert session is not None
    return Me(
        person_id=user.person_id,
        login=user.login,
        name=user.name,
        staff=user.staff,
        csrf_token=cookies.csrf_token(session),
    )
