"""One movie's results, and its image and drift files.

A file is served only when its path is recorded in the database for a movie of a visit the
user may see, and only when it lies inside that visit's own folders once resolved (symbolic
links and ``..`` included, :mod:`cryolive.web.files`): a path recorded elsewhere, another
visit's folders included, is refused, never read.
"""

from __future__ import annotations

import mimetypes

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse
from sqlalchemy.orm import Session

from cryolive.db.repo import series
from cryolive.web import files
from cryolive.web.deps import CurrentUser, DbId, DbSession, User, require_visit
from cryolive.web.models import Drift, FileKind, MovieResult

router = APIRouter()


def _visible_movie(db: Session, user: User, movie_id: int) -> tuple[int, int]:
    """(data collection id, session id) of a movie the user may see."""
    found = series.movie_session(db, movie_id=movie_id)
    if found is None:
        raise HTTPException(404, f"No movie {movie_id}.")
    require_visit(db, user, found[1])
    return found


@router.get("/api/movies/{movie_id}", tags=["movies"])
def movie_api(movie_id: DbId, user: CurrentUser, db: DbSession) -> MovieResult:
    """A movie and its results; ``files`` lists the kinds of file it has."""
    _visible_movie(db, user, movie_id)
    found = series.movie(db, movie_id=movie_id)
    assert found is not None
    result = MovieResult.model_validate(found)
    results = (result.total_motion_a, result.defocus_a, result.ice_median, result.particles)
    processed = bool(result.files) or any(v is not None for v in results)
    return result.model_copy(update={"processed": processed})


@router.get(
    "/api/movies/{movie_id}/files/{kind}",
    tags=["movies"],
    response_class=FileResponse,
    response_model=Drift,  # lists the model; the file is sent as it is on disk
    responses={
        200: {
            "content": {
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": {"$ref": "#/components/schemas/Drift"}},
            }
        }
    },
)
def movie_file(movie_id: DbId, kind: FileKind, user: CurrentUser, db: DbSession) -> FileResponse:
    """A movie's snapshot, power spectrum (fft), CTF fit, picks image (PNG) or drift (JSON)."""
    _, session_id = _visible_movie(db, user, movie_id)
    recorded = series.movie_file(db, movie_id=movie_id, kind=kind)
    if recorded is None:
        raise HTTPException(404, f"Movie {movie_id} has no {kind} file yet.")
    path = files.inside(recorded, files.visit_folders(db, session_id=session_id))
    if path is None:
        raise HTTPException(403, f"The {kind} file of movie {movie_id} is outside its visit.")
    if not path.is_file():
        raise HTTPException(404, f"The {kind} file of movie {movie_id} is missing on disk.")
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media, headers={"Cache-Control": "private, max-age=3600"})
