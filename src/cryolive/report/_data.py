"""What a session report shows, read from the database (and the images it names, from the
visit's own folders only)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from cryolive.config import CurationThresholds
from cryolive.db import ledger
from cryolive.db.repo import browse, classes, curation, grid_view, recon3d, series, visits
from cryolive.io.paths import inside

MAX_CLASSES = 24


@dataclass(frozen=True)
class ClassImage:
    batch: int
    class_number: int
    particles: int
    resolution_a: float | None
    image: NDArray[np.float32]  # (y, x) grey or (y, x, channels)


@dataclass(frozen=True)
class JobLine:
    program_id: int
    name: str
    status: str
    start: dt.datetime | None
    end: dt.datetime | None
    message: str
    outcomes: dict[str, int]


@dataclass(frozen=True)
class CollectionReport:
    row: browse.CollectionRow
    summary: dict[str, Any]
    series: dict[str, Any]
    atlas: grid_view.AtlasView | None
    atlas_image: NDArray[Any] | None
    classes: list[ClassImage] = field(default_factory=list)
    jobs: list[JobLine] = field(default_factory=list)
    # curation: the thresholds in force per measure (low, high; None: unset) and the counts
    curation: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    accepted: tuple[int, int] | None = None  # (accepted, movies judged)
    results3d: recon3d.Results3D | None = None


@dataclass(frozen=True)
class VisitReport:
    visit: browse.VisitRow
    collections: list[CollectionReport]
    made_at: dt.datetime

    @property
    def span(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        """The first and last movie's time (UTC) over all collections."""
        times = [t for c in self.collections for t in c.series["created"] if t is not None]
        if not times:
            return None, None
        first, last = min(times), max(times)
        return (
            dt.datetime.fromtimestamp(first, dt.UTC).replace(tzinfo=None),
            dt.datetime.fromtimestamp(last, dt.UTC).replace(tzinfo=None),
        )


def _folders(rows: Sequence[browse.CollectionRow], atlas_roots: Sequence[Path]) -> list[Path]:
    """The visit's folders (each raw folder's parent: raw, processed, atlas) and the
    facility's atlas roots: the only places images are read from."""
    found = [Path(os.path.normpath(r)) for r in atlas_roots if os.path.isabs(r)]
    for row in rows:
        raw = Path(os.path.normpath(row.directory or "/"))
        if raw.is_absolute() and raw.parent != raw and raw.parent.parent != raw.parent:
            found.append(raw.parent)
    return found


def _image(path: str | None, folders: Sequence[Path]) -> NDArray[Any] | None:
    """A PNG or JPEG inside ``folders``, or None (missing, elsewhere or unreadable)."""
    from matplotlib import image as mpimg

    checked = inside(path, folders) if path else None
    if checked is None or checked.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        return None
    try:
        return np.asarray(mpimg.imread(checked))
    except (OSError, ValueError, SyntaxError):
        return None


def _classes(
    session: Session, data_collection_id: int, folders: Sequence[Path]
) -> list[ClassImage]:
    """The best 2D classes: most particles first, over the newest classification of each
    batch."""
    rows = [
        (batch.batch_number, c)
        for batch in classes.gallery(session, data_collection_id=data_collection_id)
        for c in batch.classes
        if c.has_image
    ]
    rows.sort(key=lambda r: -r[1].particles)
    out = []
    for batch, c in rows:
        found = classes.class_image(
            session, particle_classification_id=c.particle_classification_id
        )
        image = _image(found[0] if found else None, folders)
        if image is not None:
            out.append(ClassImage(batch, c.class_number, c.particles, c.resolution_a, image))
        if len(out) == MAX_CLASSES:
            break
    return out


def _curation(
    session: Session, data_collection_id: int, defaults: CurationThresholds
) -> dict[str, Any]:
    """The collection's curation thresholds per report measure, and how many movies count."""
    judged = curation.evaluate(session, data_collection_id=data_collection_id, defaults=defaults)
    t = judged.thresholds
    limits: dict[str, tuple[float | None, float | None]] = {
        "defocus_um": (t.defocus_min_um, t.defocus_max_um),
        "total_motion_a": (None, t.total_motion_max_a),
        "resolution_a": (None, t.ctf_resolution_max_a),
        "ice_median": (t.ice_min, t.ice_max),
        "particles": (
            None if t.particles_min is None else float(t.particles_min),
            None if t.particles_max is None else float(t.particles_max),
        ),
    }
    set_limits = {k: v for k, v in limits.items() if v != (None, None)}
    return {"curation": set_limits, "accepted": (sum(judged.accepted), len(judged.accepted))}


def gather(
    session: Session,
    *,
    visit: str,
    atlas_roots: Sequence[Path] = (),
    now: dt.datetime,
    curation_defaults: CurationThresholds | None = None,
) -> VisitReport:
    """Everything the report of ``visit`` shows.

    Raises
    ------
    LookupError
        When there is no such visit.
    """
    curation_defaults = curation_defaults or CurationThresholds()
    session_id = visits.find_visit(session, visit=visit)
    found = None if session_id is None else browse.visit(session, session_id=session_id)
    if session_id is None or found is None:
        raise LookupError(f"visit: no visit {visit!r}")
    rows = browse.collections_of(session, session_id=session_id)
    folders = _folders(rows, atlas_roots)
    reports = []
    for row in rows:
        dc = row.data_collection_id
        atlas = grid_view.atlas_of_collection(session, data_collection_id=dc)
        jobs = [
            JobLine(
                j.auto_proc_program_id,
                j.display_name or j.recipe,
                j.status,
                j.start,
                j.end,
                "; ".join([j.message, *(m for _, m in j.messages)]).strip("; "),
                ledger.outcomes(session, program_id=j.auto_proc_program_id),
            )
            for j in browse.jobs_of(session, data_collection_id=dc)
        ]
        reports.append(
            CollectionReport(
                row=row,
                summary=series.summary(session, data_collection_id=dc, now=now),
                series=series.series(session, data_collection_id=dc),
                atlas=atlas,
                atlas_image=None if atlas is None else _image(atlas.image, folders),
                classes=_classes(session, dc, folders),
                jobs=jobs,
                **_curation(session, dc, curation_defaults),
                results3d=recon3d.results_3d(session, data_collection_id=dc),
            )
        )
    return VisitReport(found, reports, now)
