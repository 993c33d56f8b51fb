"""A visit's session report, as a PDF download (members and staff)."""

from __future__ import annotations

import io
import threading
import time

from fastapi import APIRouter, Request
from fastapi.responses import Response

from cryolive.report import write_report
from cryolive.web.deps import AppSettings, CurrentUser, DbSession, VisitName
from cryolive.web.routes.alerts import visible_visit

router = APIRouter()
FRESH_S = 60.0


class ReportCache:
    """The reports made in the last ``FRESH_S`` seconds, by visit: a double click, or many
    members of one visit at once, make one report (a few seconds of CPU), not many."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: dict[str, tuple[float, bytes]] = {}

    def get(self, visit: str) -> bytes | None:
        with self._lock:
            found = self._made.get(visit)
            return found[1] if found and time.monotonic() - found[0] < FRESH_S else None

    def put(self, visit: str, pdf: bytes) -> None:
        with self._lock:
            now = time.monotonic()
            self._made = {v: m for v, m in self._made.items() if now - m[0] < FRESH_S}
            self._made[visit] = (now, pdf)


@router.get(
    "/visits/{visit}/report.pdf",
    tags=["visits"],
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "The report."}},
)
def report_pdf(
    visit: VisitName, request: Request, user: CurrentUser, db: DbSession, settings: AppSettings
) -> Response:
    """The visit's session report: optics and counts, measures over time and their
    distributions, the atlas, the best 2D classes, the processing jobs and failures (made at
    most once a minute per visit)."""
    visible_visit(db, user, visit)
    cache: ReportCache = request.app.state.reports
    pdf = cache.get(visit)
    if pdf is None:
        out = io.BytesIO()
        write_report(
            db,
            visit=visit,
            out=out,
            bounds=settings.alerts.bounds,
            atlas_roots=settings.atlas_roots,
            curation_defaults=settings.curation,
        )
        pdf = out.getvalue()
        cache.put(visit, pdf)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{visit}-report.pdf"'},
    )
