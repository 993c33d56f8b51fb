"""The web application: :func:`create_app` builds it from settings (nothing at import time)."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.datastructures import MutableHeaders
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cryolive.config import Settings
from cryolive.db import make_engine, session_factory
from cryolive.messaging.transport import Transport
from cryolive.web import assets as asset_routes
from cryolive.web import bundle
from cryolive.web.assets import Assets
from cryolive.web.auth import (
    Authenticator,
    LocalPasswords,
    LoginThrottle,
    SessionCookies,
    TrustedProxies,
)
from cryolive.web.broker import broker_view
from cryolive.web.bundle import plotly_js
from cryolive.web.deps import NotLoggedIn
from cryolive.web.pages import ago, duration, url_segment, utc_time
from cryolive.web.routes import alerts as alert_routes
from cryolive.web.routes import (
    auth,
    classes,
    collections,
    curation,
    grid,
    jobs,
    movies,
    staff,
    visits,
)
from cryolive.web.routes import queues as queue_routes
from cryolive.web.routes import recon3d as recon3d_routes
from cryolive.web.routes import report as report_routes
from cryolive.web.secret import session_secret
from cryolive.web.series_cache import SeriesCache

_HERE = Path(__file__).parent
log = logging.getLogger(__name__)

# No inline script anywhere (scripts are files under /static or /vendor; data reaches them in
# data- attributes or JSON blocks, which are not run); styles may be inline (Plotly and Swagger
# UI set them); nothing from other sites; no framing.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class SecurityHeaders:
    """Puts :data:`SECURITY_HEADERS` on every response (pages, API, files, errors)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def page_assets(chart_bundle: Path | None = None) -> Assets:
    """The scripts and style sheet the pages load, under hashed, long-cached names: with the
    partial chart bundle when ``chart_bundle`` (or :func:`bundle.default_location`) holds the
    pinned one (:func:`bundle.partial_bundle`)."""
    names = (
        "cryolive.css",
        "charts.js",
        "collection.js",
        "gallery.js",
        "curation.js",
        "grid.js",
        "staff.js",
        "docs.js",
        "recon3d.js",
    )
    files = {name: _HERE / "static" / name for name in names} | {bundle.FULL: plotly_js()}
    partial = bundle.partial_bundle(chart_bundle)
    if partial is not None:
        files[bundle.PARTIAL] = partial
    return Assets(files)


def chart_bundle_name(assets: Assets) -> str:
    """The Plotly bundle the chart pages load: the partial one when it is an asset."""
    return bundle.PARTIAL if assets.has(bundle.PARTIAL) else bundle.FULL


def swagger_ui_files() -> Path:
    """Swagger UI's files (swagger-ui-bundle.js, swagger-ui.css, favicon.png) as the installed
    ``fastapi-offline`` package ships them: /docs loads nothing from a CDN."""
    return Path(str(resources.files("fastapi_offline") / "static"))


def create_app(
    settings: Settings,
    *,
    authenticator: Authenticator | None = None,
    transport: Transport | None = None,
    queues: tuple[str, ...] | None = None,
) -> FastAPI:
    """The application for one deployment.

    It reads through a read-only engine (on SQLite the file is opened read-only; on MariaDB
    ``settings.web.reader_url``, the read-only account, when set) and writes only users' job
    requests, stops, hand-registered data collections and logins, through a second engine
    (``settings.database``). ``transport``: the broker the staff area shows (default:
    RabbitMQ's when ``settings.broker_url`` names one; the embedded broker must be handed in);
    ``queues``: the queues it shows (default: those of the spa-preprocess recipe).

    Refuses (:class:`cryolive.web.secret.WeakSecret`, a ValueError) a session secret that is
    empty, short or published; with none configured it uses the one generated in the data root.
    """
    secret = session_secret(settings)
    reader = make_engine(settings.web.reader_url or settings.database, writer=False)
    writer = make_engine(settings.database, writer=True)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # compressed before the first visitor asks (plotly.min.js takes ~0.6 s), once a process
        threading.Thread(target=app.state.assets.warm, name="assets", daemon=True).start()
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
        docs_url=None,  # /docs below: Swagger UI from an installed package, no inline script
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.settings = settings
    app.state.reader = session_factory(reader)
    app.state.writer = session_factory(writer)
    app.state.authenticator = authenticator or LocalPasswords()
    app.state.cookies = SessionCookies(secret, max_age_s=settings.web.session_hours * 3600)
    app.state.throttle = LoginThrottle(
        attempts=settings.web.login_attempts, client_attempts=settings.web.client_login_attempts
    )
    app.state.series_cache = SeriesCache()
    app.state.reports = report_routes.ReportCache()
    app.state.templates = Jinja2Templates(directory=_HERE / "templates")
    app.state.templates.env.filters["segment"] = url_segment
    app.state.templates.env.filters.update(utc=utc_time, ago=ago, duration=duration)
    app.state.assets = page_assets(settings.web.chart_bundle)
    app.state.templates.env.globals["asset"] = app.state.assets.url
    app.state.templates.env.globals["chart_bundle"] = chart_bundle_name(app.state.assets)
    app.state.broker = broker_view(settings, transport=transport, queues=queues)

    app.include_router(asset_routes.router)
    routers = (
        auth,
        visits,
        collections,
        curation,
        classes,
        grid,
        movies,
        jobs,
        staff,
        queue_routes,
    )
    for module in (*routers, alert_routes, report_routes, recon3d_routes):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")
    app.mount("/vendor/swagger-ui", StaticFiles(directory=swagger_ui_files()), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(_DOCS_PAGE)

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly() -> FileResponse:
        return FileResponse(
            plotly_js(),
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    _add_error_handlers(app)
    # pages and API answers compressed on the fly; the live event stream is not (Starlette
    # leaves text/event-stream alone, so each update leaves at once), nor already-compressed
    # assets and images
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=6)
    # outermost last: the headers go on every response, errors included; the client address is
    # settled before anything (the login throttle) reads it
    app.add_middleware(SecurityHeaders)
    app.add_middleware(TrustedProxies, proxies=settings.web.trusted_proxies)
    return app


_DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>cryolive API</title>
<link rel="stylesheet" href="/vendor/swagger-ui/swagger-ui.css">
<link rel="icon" href="/vendor/swagger-ui/favicon.png">
</head>
<body>
<div id="swagger-ui" data-openapi="/openapi.json"></div>
<script src="/vendor/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/docs.js"></script>
</body>
</html>
"""


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

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> Response:
        # Answered by Starlette's outermost layer, outside SecurityHeaders: the headers go on
        # here, and the answer says nothing of the exception (it is in the server's log).
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse(
            {"detail": "Internal error: it is logged; please tell the facility's staff."},
            status_code=500,
            headers=SECURITY_HEADERS,
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
