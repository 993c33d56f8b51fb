"""One movie's results, and its image and drift files.

A file is served only when its path is recorded in the database for a movie of a visit the
user may see, and only when it lies inside that visit's own folders once resolved (symbolic
links and ``..`` included, :mod:`cryolive.web.files`): a path recorded elsewhere, another
visit's folders included, is refused, never read.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse
from sqlalchemy.orm import Session

from cryolive.db.repo import series
from cryolive.io.layout import sibling_base
from cryolive.io.outputs.ctf import read_ctf_profile
from cryolive.web import files
from cryolive.web.deps import CurrentUser, DbId, DbSession, User, require_visit
from cryolive.web.models import CtfProfile, Drift, FileKind, MovieResult

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


DIAGNOSTIC = "_ctf_diag.png"


@router.get(
    "/api/movies/{movie_id}/ctf",
    tags=["movies"],
    responses={
        404: {"description": "No CTF profile for this movie (yet), or its file is missing"},
        422: {"description": "The movie's CTF files cannot be read (said why)"},
    },
)
def movie_ctf(movie_id: DbId, user: CurrentUser, db: DbSession) -> CtfProfile:
    """A movie's CTF profile: data and fitted model against spatial frequency, the fit
    resolution, and whether the fit is trusted (a best guess that failed its checks is shown
    as such, from the files written beside the micrograph's other CTF files)."""
    _, session_id = _visible_movie(db, user, movie_id)
    diagnostic, micrograph = series.ctf_sources(db, movie_id=movie_id)
    base: Path | None = None
    if diagnostic is not None and diagnostic.endswith(DIAGNOSTIC):
        base = Path(diagnostic[: -len(DIAGNOSTIC)])
    elif diagnostic is None and micrograph is not None:
        base = sibling_base(micrograph, "CtfFind")
    if base is None:
        raise HTTPException(404, f"Movie {movie_id} has no CTF profile yet.")
    folders = files.visit_folders(db, session_id=session_id)
    curves = files.inside(f"{base}_ctf_curves.json", folders)
    if curves is None:
        raise HTTPException(403, f"The CTF files of movie {movie_id} are outside its visit.")
    if not curves.is_file():
        raise HTTPException(404, f"Movie {movie_id} has no CTF profile yet.")
    summary = files.inside(f"{base}_ctf.json", folders)
    try:
        profile = read_ctf_profile(
            curves,
            summary if summary is not None and summary.is_file() else None,
            recorded=diagnostic is not None,
        )
    except ValueError as exc:
        detail = f"The CTF profile of movie {movie_id} cannot be read: {exc}."
        raise HTTPException(422, detail) from exc
    return CtfProfile(
        status="ok" if profile.status == "ok" else "not-trusted",
        reason=profile.reason,
        fit_resolution_a=profile.fit_resolution_a,
        defocus_a=profile.defocus_a,
        frequency_per_a=list(profile.curves.frequency_per_a),
        data=list(profile.curves.data),
        fit=list(profile.curves.fit),
        cc=list(profile.curves.cc),
    )
