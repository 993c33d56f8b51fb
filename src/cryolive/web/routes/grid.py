"""Where on the grid: a collection's atlas with its grid squares, a grid square with its foil
holes (each coloured by a quality measure on the pages), and the movies of a hole.

Images are served under the rule every served file follows (:mod:`cryolive.web.files`): the
path recorded for a visit the user may see, resolved, must lie inside that visit's folders. An
atlas lies beside the raw folders (``<visit>/atlas/…``), so the visit's own folder counts for
it. EPU writes a JPEG beside each square and hole image, served as it is; an atlas is often an
MRC only, served as a PNG of at most ``PREVIEW_PX`` pixels a side (rendered once per file
version and kept in a small cache).
"""

from __future__ import annotations

import mimetypes
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path

import mrcfile
import numpy as np
from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, Response
from sqlalchemy.orm import Session

from cryolive.db.repo import grid_view
from cryolive.io import ReadError
from cryolive.io.epu_session import read_image_xml
from cryolive.io.micrograph import MicrographReadError, read_micrograph
from cryolive.io.png import png_bytes
from cryolive.web import files
from cryolive.web.deps import CurrentUser, DbId, DbSession, User, require_visit
from cryolive.web.models import AtlasDetail, FoilHoleMovie, GridSquareDetail, GridSquareSummary
from cryolive.web.pages import UserPage
from cryolive.web.routes.collections import visible_collection

router = APIRouter()
IMAGE_TYPES = ("image/jpeg", "image/png")
PREVIEW_PX = 1024
IMAGE_RESPONSE = {
    200: {
        "content": {
            kind: {"schema": {"type": "string", "format": "binary"}} for kind in IMAGE_TYPES
        }
    }
}


def _browser_image(recorded: str | None) -> bool:
    return bool(recorded) and mimetypes.guess_type(str(recorded))[0] in IMAGE_TYPES


def _servable(recorded: str | None) -> bool:
    return _browser_image(recorded) or str(recorded or "").lower().endswith(".mrc")


@lru_cache(maxsize=8)
def _preview(path: Path, version: tuple[int, int]) -> bytes:
    """A PNG of the MRC image at ``path`` (``version``: its size and time stamp), binned to at
    most PREVIEW_PX a side, grey levels from its 1st to 99th percentile."""
    image, _ = read_micrograph(path)
    step = max(1, -(-max(image.shape) // PREVIEW_PX))
    ny, nx = image.shape[0] // step * step, image.shape[1] // step * step
    binned = image[:ny, :nx].reshape(ny // step, step, nx // step, step).mean(axis=(1, 3))
    low, high = (float(v) for v in np.percentile(binned, [1, 99]))
    return png_bytes(binned, low=low, high=high if high > low else low + 1)


def _atlas_frame(image: str) -> tuple[int | None, int | None]:
    """The size of the atlas image EPU placed the squares on: its MRC beside the JPEG."""
    mrc = Path(image).with_suffix(".mrc")
    try:
        with mrcfile.open(mrc, header_only=True, permissive=True) as found:
            return int(found.header.nx), int(found.header.ny)
    except (OSError, ValueError):
        return None, None


def _square_frame(image: str | None) -> tuple[int | None, int | None]:
    """The size of the square image EPU placed the holes on: its ``.xml`` beside the JPEG."""
    if not image:
        return None, None
    try:
        found = read_image_xml(Path(image).with_suffix(".xml"))
    except ReadError:
        return None, None
    return found.width_px, found.height_px


def _atlas(db: Session, user: User, data_collection_id: int) -> grid_view.AtlasView:
    visible_collection(db, user, data_collection_id)
    found = grid_view.atlas_of_collection(db, data_collection_id=data_collection_id)
    if found is None:
        raise HTTPException(404, f"Data collection {data_collection_id} has no atlas yet.")
    return found


def _square(db: Session, user: User, grid_square_id: int) -> grid_view.SquareDetail:
    found = grid_view.grid_square(db, grid_square_id=grid_square_id)
    if found is None:
        raise HTTPException(404, f"No grid square {grid_square_id}.")
    require_visit(db, user, found.session_id)
    return found


def _serve(db: Session, recorded: str | None, session_id: int, what: str) -> Response:
    if not recorded or not _servable(recorded):
        raise HTTPException(404, f"{what} has no image.")
    folders = files.visit_folders(db, session_id=session_id)
    folders += [folder.parent for folder in folders if folder.name != "processed"]
    path = files.inside(recorded, folders)
    if path is None:
        raise HTTPException(403, f"The image of {what} is outside its visit.")
    if not path.is_file():
        raise HTTPException(404, f"The image of {what} is missing on disk.")
    cache = {"Cache-Control": "private, max-age=3600"}
    if not _browser_image(recorded):
        stat = path.stat()
        try:
            body = _preview(path, (stat.st_size, stat.st_mtime_ns))
        except MicrographReadError as exc:
            raise HTTPException(422, f"The image of {what} cannot be read: {exc}") from exc
        return Response(body, media_type="image/png", headers=cache)
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media, headers={"Cache-Control": "private, max-age=3600"})


def _atlas_detail(found: grid_view.AtlasView) -> AtlasDetail:
    width, height = _atlas_frame(found.image) if found.image else (None, None)
    return AtlasDetail(
        atlas_id=found.atlas_id,
        data_collection_group_id=found.data_collection_group_id,
        pixel_size_a=found.pixel_size_a,
        has_image=_servable(found.image),
        frame_width_px=width,
        frame_height_px=height,
        squares=[GridSquareSummary.model_validate(s) for s in found.squares],
    )


def _square_detail(found: grid_view.SquareDetail) -> GridSquareDetail:
    width, height = _square_frame(found.square.image)
    summary = GridSquareSummary.model_validate(found.square).model_dump()
    return GridSquareDetail.model_validate(
        summary
        | {
            "data_collection_id": found.data_collection_id,
            "has_image": _servable(found.square.image),
            "frame_width_px": width,
            "frame_height_px": height,
            "holes": [asdict(h) for h in found.holes],
        }
    )


@router.get("/api/collections/{data_collection_id}/atlas", tags=["grid"])
def atlas_api(data_collection_id: DbId, user: CurrentUser, db: DbSession) -> AtlasDetail:
    """The atlas of the collection's grid: its grid squares, placed on the atlas image, each
    with its movies and the means of their results."""
    return _atlas_detail(_atlas(db, user, data_collection_id))


@router.get(
    "/api/collections/{data_collection_id}/atlas/image",
    tags=["grid"],
    response_class=FileResponse,
    responses=IMAGE_RESPONSE,  # type: ignore[arg-type]
)
def atlas_image(data_collection_id: DbId, user: CurrentUser, db: DbSession) -> Response:
    """The atlas image: EPU's JPEG or PNG as it is, or a PNG preview of its MRC."""
    found = _atlas(db, user, data_collection_id)
    return _serve(db, found.image, found.session_id, f"the atlas of {data_collection_id}")


@router.get("/api/grid-squares/{grid_square_id}", tags=["grid"])
def grid_square_api(grid_square_id: DbId, user: CurrentUser, db: DbSession) -> GridSquareDetail:
    """A grid square and its foil holes, placed on the square's image, each with its movies
    and the means of their results."""
    return _square_detail(_square(db, user, grid_square_id))


@router.get(
    "/api/grid-squares/{grid_square_id}/image",
    tags=["grid"],
    response_class=FileResponse,
    responses=IMAGE_RESPONSE,  # type: ignore[arg-type]
)
def grid_square_image(grid_square_id: DbId, user: CurrentUser, db: DbSession) -> Response:
    """The grid square's image: EPU's JPEG or PNG as it is, or a PNG preview of its MRC."""
    found = _square(db, user, grid_square_id)
    return _serve(db, found.square.image, found.session_id, f"grid square {grid_square_id}")


@router.get("/api/foil-holes/{foil_hole_id}/movies", tags=["grid"])
def foil_hole_movies(foil_hole_id: DbId, user: CurrentUser, db: DbSession) -> list[FoilHoleMovie]:
    """The movies taken in a foil hole, with their results."""
    found = grid_view.hole_movies(db, foil_hole_id=foil_hole_id)
    if found is None:
        raise HTTPException(404, f"No foil hole {foil_hole_id}.")
    session_id, movies = found
    require_visit(db, user, session_id)
    return [FoilHoleMovie.model_validate(m) for m in movies]


@router.get(
    "/collections/{data_collection_id}/atlas", response_class=HTMLResponse, include_in_schema=False
)
def atlas_page(data_collection_id: DbId, page: UserPage, db: DbSession) -> HTMLResponse:
    collection = visible_collection(db, page.user, data_collection_id)
    found = grid_view.atlas_of_collection(db, data_collection_id=data_collection_id)
    return page.render("atlas.html", collection=collection, atlas=found)


@router.get("/grid-squares/{grid_square_id}", response_class=HTMLResponse, include_in_schema=False)
def grid_square_page(grid_square_id: DbId, page: UserPage, db: DbSession) -> HTMLResponse:
    found = _square(db, page.user, grid_square_id)
    return page.render("grid_square.html", square=found)
