"""Server-rendered pages: a :class:`Page` knows the request, the user and their CSRF token."""

from __future__ import annotations

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
