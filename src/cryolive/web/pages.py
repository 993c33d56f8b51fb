"""Server-rendered pages: a :class:`Page` knows the request, the user and their CSRF token."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from cryolive.web.deps import Cookies, CurrentUser, MaybeSession, User


def url_segment(value: object) -> str:
    """``value`` as one segment of a URL path: every character but letters, digits and
    ``_.-~`` percent-encoded, ``/`` ``?`` ``#`` included (Jinja's ``urlencode`` keeps ``/``).
    Templates use it as the ``segment`` filter for every value they put in a URL."""
    return quote(str(value), safe="")


def utc_time(value: dt.datetime | None) -> str:
    """A time as people read it, with its zone: "2026-12-06 19:38 UTC" (ISPyB's naive times
    are UTC); "" for none. The ``utc`` filter."""
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return f"{value:%Y-%m-%d %H:%M} UTC"


def duration(seconds: float) -> str:
    """A span of time in words, rounded: "40 s", "3 min", "2 h 5 min", "3 days". The
    ``duration`` filter."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{round(s / 60)} min"
    if s < 2 * 86400:
        h, m = divmod(round(s / 60), 60)
        return f"{h} h {m} min" if m else f"{h} h"
    return f"{round(s / 86400)} days"


def ago(value: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """How long ago a (naive UTC) time was: "3 min ago", "just now", "in 2 h" for one ahead;
    "" for none. The ``ago`` filter."""
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    seconds = (now - value).total_seconds()
    if abs(seconds) < 30:
        return "just now"
    return f"{duration(seconds)} ago" if seconds > 0 else f"in {duration(-seconds)}"


@dataclass(frozen=True)
class Page:
    request: Request
    user: User
    csrf: str

    def render(self, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
        templates: Jinja2Templates = self.request.app.state.templates
        return templates.TemplateResponse(
            self.request,
            template,
            {"user": self.user, "csrf": self.csrf, **context},
            status_code=status,
        )


def page(request: Request, user: CurrentUser, session: MaybeSession, cookies: Cookies) -> Page:
    assert session is not None  # a current user implies a session
    return Page(request=request, user=user, csrf=cookies.csrf_token(session))


UserPage = Annotated[Page, Depends(page)]
