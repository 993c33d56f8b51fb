"""The session report: a multi-page PDF a user takes home (docs/report.md).

:func:`write_report` reads a visit from the database (:func:`gather`) and draws it with
matplotlib into one PDF (``PdfPages``): a title page with each data collection's optics and
counts, the measures over time and their distributions (with the alert bounds as dashed
lines), the atlas with its squares coloured by CTF resolution, the best 2D classes, and the
3D results (classes, refinements, the B-factor plot) when there are any, and the processing
jobs with their failures. Curation thresholds are drawn as solid green lines.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from sqlalchemy.orm import Session

from cryolive.config import CurationThresholds
from cryolive.report._data import VisitReport, gather


def write_report(
    session: Session,
    *,
    visit: str,
    out: Path | IO[bytes],
    bounds: Mapping[str, tuple[float, float]] | None = None,
    atlas_roots: Sequence[Path] = (),
    now: dt.datetime | None = None,
    curation_defaults: CurationThresholds | None = None,
) -> int:
    """Write the report of ``visit`` as a PDF to ``out``; return its number of pages.

    ``bounds``: measure -> (low, high), drawn on the charts (the alert bounds, settings
    ``alerts.bounds``); each collection's curation thresholds (its own, else
    ``curation_defaults``) are drawn as solid lines and its accepted count given. Images are
    read only from the visit's folders and ``atlas_roots``.

    Raises
    ------
    LookupError
        When there is no such visit.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_pdf import PdfPages

    from cryolive.report import _figures as figures

    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    report = gather(
        session, visit=visit, atlas_roots=atlas_roots, now=now, curation_defaults=curation_defaults
    )
    pages = [figures.title_page(report)]
    for c in report.collections:
        if c.summary["movies"]:
            pages += [figures.series_page(c, bounds or {}), figures.histogram_page(c, bounds or {})]
        pages += [
            p
            for p in (figures.atlas_page(c), figures.classes_page(c), figures.recon3d_page(c))
            if p is not None
        ]
    pages.append(figures.jobs_page(report))
    metadata = {"Title": f"cryolive session report {visit}", "Creator": "cryolive"}
    with PdfPages(out, metadata=metadata) as pdf:
        for page in pages:
            pdf.savefig(page)
    return len(pages)


__all__ = ["VisitReport", "gather", "write_report"]
