"""One movie's results, and its image and drift files.

A file is served only when its path is recorded in the database for a movie of a visit the
user may see, and only when it lies under the configured processing root once resolved
(symbolic links and ``..`` included): a path recorded elsewhere is refused, never read.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from sqlalchemy.orm import Session

from cryolive.db.repo import series
from cryolive.web.deps import AppSettings, CurrentUser, DbSession, User, require_visit

router = APIRouter()
FileKind = Literal["snapshot", "fft", "ctf_fit", "drift", "picks"]
MovieId = Annotated[int, PathParam(ge=1)]


def _visible_movie(db: Session, user: User, movie_id: int) -> int:
    found = series.movie_session(db, movie_id=movie_id)
    if found is None:
        raise HTTPException(404, f"No movie {movie_id}.")
    require_visit(db, user, found[1])
    return found[0]


def within(root: Path, recorded: str) -> Path | None:
    """``recorded`` resolved, if it lies under ``root`` resolved; else None."""
    root = root.resolve()
    path = Path(recorded).resolve()
    return path if path.is_relative_to(root) else None


@router.get("/api/movies/{movie_id}", tags=["movies"])
def movie_api(movie_id: MovieId, user: CurrentUser, db: DbSession) -> dict[str, Any]:
    """A movie and its results; ``files`` lists the kinds of file it has."""
    _visible_movie(db, user, movie_id)
    found = series.movie(db, movie_id=movie_id)
    assert found is not None
    return found


@router.get("/api/movies/{movie_id}/files/{kind}", tags=["movies"])
def movie_file(
    movie_id: MovieId, kind: FileKind, user: CurrentUser, db: DbSession, settings: AppSettings
) -> FileResponse:
    """A movie's snapshot, power spectrum (fft), CTF fit, picks image (PNG) or drift (JSON)."""
    _visible_movie(db, user, movie_id)
    recorded = series.movie_file(db, movie_id=movie_id, kind=kind)
    if recorded is None:
        raise HTTPException(404, f"Movie {movie_id} has no {kind} file yet.")
    path = within(settings.processing_root, recorded)
    if path is None:
        raise HTTPException(
            403, f"The {kind} file of movie {movie_id} is outside the processing root."
        )
    if not path.is_file():
        raise HTTPException(404, f"The {kind} file of movie {movie_id} is missing on disk.")
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media, headers={"Cache-Control": "private, max-age=3600"})
