"""Exposure curation of a data collection: its thresholds (read and set) and manual accept or
reject of a movie, for the visit's members and staff. Bad values answer 422 naming the field."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from cryolive.config import CurationThresholds
from cryolive.db.repo import curation, series
from cryolive.web.deps import AppSettings, CsrfChecked, CurrentUser, DbId, DbSession, WriterSession
from cryolive.web.models import Curation, ManualDecision
from cryolive.web.routes.collections import visible_collection

router = APIRouter()


def _view(data_collection_id: int, found: curation.Curation) -> Curation:
    columns = found.measures.columns()
    del columns["movie_path"], columns["micrograph_path"], columns["astigmatism_angle_deg"]
    return Curation.model_validate(
        {
            "data_collection_id": data_collection_id,
            "thresholds": found.thresholds,
            "own": found.own,
            "changed_by": found.changed_by,
            "changed_at": found.changed_at,
            "counts": found.counts(),
            "movies": columns | {"accepted": found.accepted, "reasons": found.reasons},
        }
    )


@router.get("/api/collections/{data_collection_id}/curation", tags=["curation"])
def curation_api(
    data_collection_id: DbId, user: CurrentUser, db: DbSession, settings: AppSettings
) -> Curation:
    """The thresholds in force (the collection's, or the facility's defaults), the counts of
    accepted and rejected movies by reason, and every movie's measures and decision."""
    visible_collection(db, user, data_collection_id)
    found = curation.evaluate(db, data_collection_id=data_collection_id, defaults=settings.curation)
    return _view(data_collection_id, found)


@router.put(
    "/api/collections/{data_collection_id}/curation",
    tags=["curation"],
    dependencies=[CsrfChecked],
)
def set_curation_api(
    data_collection_id: DbId,
    body: CurationThresholds,
    user: CurrentUser,
    db: DbSession,
    writer: WriterSession,
    settings: AppSettings,
) -> Curation:
    """Make these the collection's thresholds (a bound left out or null rejects nothing) and
    re-decide its movies on the results recorded (nothing is reprocessed)."""
    visible_collection(db, user, data_collection_id)
    found = curation.set_thresholds(
        writer,
        data_collection_id=data_collection_id,
        limits=body,
        changed_by=user.login,
        defaults=settings.curation,
    )
    return _view(data_collection_id, found)


@router.post("/api/movies/{movie_id}/curation", tags=["curation"], dependencies=[CsrfChecked])
def decide_movie_api(
    movie_id: DbId,
    body: ManualDecision,
    user: CurrentUser,
    db: DbSession,
    writer: WriterSession,
    settings: AppSettings,
) -> Curation:
    """Accept or reject one movie by hand, whatever the thresholds say (null: they decide)."""
    where = series.movie_session(db, movie_id=movie_id)
    if where is None:
        raise HTTPException(404, f"No movie {movie_id}.")
    visible_collection(db, user, where[0])
    found = curation.set_manual(
        writer, movie_id=movie_id, manual=body.decision, by=user.login, defaults=settings.curation
    )
    return _view(where[0], found)
