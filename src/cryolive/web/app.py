"""The web application: :func:`create_app` builds it from settings (nothing at import time)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from cryolive.config import Settings
from cryolive.db import make_engine, session_factory
from cryolive.messaging.transport import Transport
from cryolive.web.auth import Authenticator, LocalPasswords, LoginThrottle, SessionCookies
from cryolive.web.broker import broker_view
from cryolive.web.deps import NotLoggedIn
from cryolive.web.pages import url_segment
from cryolive.web.routes import auth, classes, collections, jobs, movies, staff, visits
from cryolive.web.routes import queues as queue_routes
from cryolive.web.series_cache import SeriesCache

_HERE = Path(__file__).parent


def plotly_js() -> Path:
    """plotly.min.js as the installed ``plotly`` package ships it."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


def create_app(
    settings: Settings,
    *,
    authenticator: Authenticator | None = None,
    transport: Transport | None = None,
    queues: tuple[str, ...] | None = None,
) -> FastAPI:
    """The application for one deployment.

    It reads through a read-only engine (on SQLite the file is opened read-only) and writes
    only users' job requests, stops and hand-registered data collections, through a second
    engine. ``transport``: the broker the staff area shows (default: RabbitMQ's when
    ``settings.broker_url`` names one; the embedded broker must be handed in); ``queues``:
    the queues it shows (default: those of the spa-preprocess recipe).
    """
    reader = make_engine(settings.database, writer=False)
    writer = make_engine(settings.database, writer=True)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if app.state.broker.transport is not None and transport is None:
            app.state.broker.transport.close()  # the app opened it
        reader.dispose()
        writer.dispose()

    app = FastAPI(
        title="cryolive",
        summary="Live cryo-EM processing: visits, data collections, results and job control.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.reader = session_factory(reader)
    app.state.writer = session_factory(writer)
    app.state.authenticator = authenticator or LocalPasswords()
    app.state.cookies = SessionCookies(
        settings.web.secret.get_secret_value(), max_age_s=settings.web.session_hours * 3600
    )
    app.state.throttle = LoginThrottle(attempts=settings.web.login_attempts)
    app.state.series_cache = SeriesCache()
    app.state.templates = Jinja2Templates(directory=_HERE / "templates")
    app.state.templates.env.filters["segment"] = url_segment
    app.state.broker = broker_view(settings, transport=transport, queues=queues)

    for module in (auth, visits, collections, classes, movies, jobs, staff, queue_routes):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly() -> FileResponse:
        return FileResponse(
            plotly_js(),
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    _add_error_handlers(app)
    return app


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _add_error_handlers(app: FastAPI) -> None:
    templates: Jinja2Templates = app.state.templates

    def error_page(request: Request, status: int, message: str) -> Response:
        return templates.TemplateResponse(
            request,
            "error.html",
            {"status": status, "message": message, "user": None},
            status_code=status,
        )

    @app.exception_handler(NotLoggedIn)
    async def not_logged_in(request: Request, _: NotLoggedIn) -> Response:
        if _is_api(request) or request.method != "GET":
            return JSONResponse({"detail": "Log in first."}, status_code=401)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
        return error_page(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = [
            f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}"
            for e in exc.errors()
        ]
        if _is_api(request):
            return JSONResponse({"detail": "; ".join(problems)}, status_code=422)
        return error_page(request, 422, "; ".join(problems))
