"""A visit's session report, as a PDF download (members and staff)."""

from __future__ import annotations

import io

from fastapi import APIRouter
from fastapi.responses import Response

from cryolive.report import write_report
from cryolive.web.deps import AppSettings, CurrentUser, DbSession, VisitName
from cryolive.web.routes.alerts import visible_visit

router = APIRouter()


@router.get(
    "/visits/{visit}/report.pdf",
    tags=["visits"],
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "The report."}},
)
def report_pdf(
    visit: VisitName, user: CurrentUser, db: DbSession, settings: AppSettings
) -> Response:
    """The visit's session report: optics and counts, measures over time and their
    distributions, the atlas, the best 2D classes, the processing jobs and failures."""
    visible_visit(db, user, visit)
    out = io.BytesIO()
    write_report(
        db, visit=visit, out=out, bounds=settings.alerts.bounds, atlas_roots=settings.atlas_roots
    )
    return Response(
        out.getvalue(),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{visit}-report.pdf"'},
    )
