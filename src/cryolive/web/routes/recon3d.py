"""The 3D panel of a data collection: its live 3D runs (initial model, 3D classes) and
refinements, the maps (a downscaled preview for the browser's isosurface and slices, the
files for download), FSC curves and the angular distribution.

Every file is found from the map recorded in ISPyB (:mod:`cryolive.io.outputs.recon3d` gives
a refinement's other files) and served under the one rule: the map must belong to a visit
the user may see, and the file, resolved, must lie inside that visit's folders.
"""

from __future__ import annotations

import base64
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse

from cryolive.db.repo import classes, recon3d
from cryolive.errors import BadInputError
from cryolive.io.outputs.recon3d import map_preview, read_angles, read_fsc, refinement_files
from cryolive.web import files
from cryolive.web.deps import CurrentUser, DbId, DbSession, require_visit
from cryolive.web.models3d import AngularDistribution, Fsc, MapPreview, Panel3D
from cryolive.web.routes.collections import visible_collection

router = APIRouter()
PREVIEW_BOX = 32  # voxels a side the browser draws
TILT_BINS, ROT_BINS = 18, 36


class MapFile(StrEnum):
    map = "map"  # a class's map, or a refinement's sharpened (postprocessed) map
    mask = "mask"
    half1 = "half1"
    half2 = "half2"
    refined = "refined"  # the refinement's unsharpened map


@router.get("/api/collections/{data_collection_id}/3d", tags=["collections"])
def panel_api(data_collection_id: DbId, user: CurrentUser, db: DbSession) -> Panel3D:
    """The collection's 3D results: the particles of its selected 2D classes, each live 3D
    run (particles, pixel, initial model, classes with resolution in Å, completeness,
    angular efficiency, selected for refinement) and each refinement (resolution, B-factor
    from the Rosenthal-Henderson fit, its points), oldest first."""
    visible_collection(db, user, data_collection_id)
    found = recon3d.results_3d(db, data_collection_id=data_collection_id)
    return Panel3D.model_validate(
        {
            "selected_particles": classes.selected_particle_count(
                db, data_collection_id=data_collection_id
            ),
            "runs": found.runs,
            "refinements": found.refinements,
        },
        from_attributes=True,
    )


def _recorded(db: DbSession, user: CurrentUser, map_id: int) -> recon3d.MapRow:
    """A 3D class's or refinement's map (its ParticleClassification id) the user may see."""
    found = recon3d.map_of(db, particle_classification_id=map_id)
    if found is None:
        raise HTTPException(404, f"No 3D map {map_id}.")
    require_visit(db, user, found.session_id)
    if not found.path:
        raise HTTPException(404, f"3D map {map_id} has no file recorded.")
    return found


def _served(db: DbSession, found: recon3d.MapRow, path: Path, what: str) -> Path:
    inside = files.inside(str(path), files.visit_folders(db, session_id=found.session_id))
    if inside is None:
        raise HTTPException(403, f"The {what} is outside its visit.")
    if not inside.is_file():
        raise HTTPException(404, f"The {what} is missing.")
    return inside


def _file(db: DbSession, user: CurrentUser, pcid: int, which: MapFile) -> Path:
    found = _recorded(db, user, pcid)
    assert found.path is not None
    if which is MapFile.map:
        return _served(db, found, Path(found.path), f"map of {pcid}")
    if not found.refinement:
        raise HTTPException(404, f"3D map {pcid} is a 3D class: it has only its map.")
    refinement = refinement_files(Path(found.path))
    path = {
        MapFile.mask: refinement.mask,
        MapFile.half1: refinement.half1,
        MapFile.half2: refinement.half2,
        MapFile.refined: refinement.refined_map,
    }[which]
    return _served(db, found, path, f"{which.value} of {pcid}")


@router.get(
    "/api/3d/{map_id}/file",
    tags=["collections"],
    response_class=FileResponse,
    responses={
        200: {
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            }
        }
    },
)
def map_download(
    map_id: DbId,
    user: CurrentUser,
    db: DbSession,
    which: Annotated[MapFile, Query()] = MapFile.map,
) -> FileResponse:
    """A map file (MRC) of a 3D class or a refinement: ``map`` (the class map, or the
    refinement's sharpened map), and for a refinement ``mask``, ``half1``, ``half2``,
    ``refined`` (unsharpened)."""
    path = _file(db, user, map_id, which)
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=f"{which.value}_{map_id}.mrc",
        headers={"Cache-Control": "private, max-age=60"},
    )


@router.get("/api/3d/{map_id}/preview", tags=["collections"])
def map_preview_api(map_id: DbId, user: CurrentUser, db: DbSession) -> MapPreview:
    """The map downscaled to at most 32 voxels a side, for the browser: its values as bytes
    (z, y, x order; see the model), the voxel size in Å, and the map's mean and sd (for a
    threshold)."""
    path = _file(db, user, map_id, MapFile.map)
    try:
        volume, voxel = map_preview(path, max_box=PREVIEW_BOX)
    except BadInputError as exc:
        raise HTTPException(422, f"The map of {map_id} cannot be read.") from exc
    low, high = float(volume.min()), float(volume.max())
    scale = 255.0 / (high - low) if high > low else 0.0
    quantised = np.rint((volume - low) * scale).astype(np.uint8)
    return MapPreview(
        box=int(volume.shape[0]),
        voxel_a=round(float(voxel), 4),
        mean=round(float(volume.mean()), 6),
        sd=round(float(volume.std()), 6),
        minimum=low,
        maximum=high,
        values_base64=base64.b64encode(quantised.tobytes()).decode(),
    )


@router.get("/api/3d/{map_id}/fsc", tags=["collections"])
def fsc_api(map_id: DbId, user: CurrentUser, db: DbSession) -> Fsc:
    """A refinement's FSC curves against resolution (1/Å): from its postprocessing (masked,
    unmasked, corrected for masking) and its half maps; the final resolution (Å) and the
    sharpening B-factor (Å²)."""
    found = _recorded(db, user, map_id)
    if not found.refinement:
        raise HTTPException(404, f"3D map {map_id} is not a refinement.")
    assert found.path is not None
    refinement = refinement_files(Path(found.path))
    post = _served(db, found, refinement.postprocess_star, "postprocess.star")
    try:
        curves = read_fsc(post)
        half = refinement.fsc
        if half.is_file() and files.inside(
            str(half), files.visit_folders(db, session_id=found.session_id)
        ):
            halves = read_fsc(half)
            if halves.curves and len(halves.resolution_per_a) == len(curves.resolution_per_a):
                first = next(iter(halves.curves.values()))
                curves.curves.setdefault("half_maps", first)
    except BadInputError as exc:
        raise HTTPException(422, "The FSC of this refinement cannot be read.") from exc
    return Fsc.model_validate(curves, from_attributes=True)


def _class_number(path: Path) -> int:
    digits = path.stem.removeprefix("class")
    if not digits.isdigit():
        raise HTTPException(404, "This 3D class's map is not named classNNN.mrc.")
    return int(digits)


@router.get("/api/3d/{map_id}/angles", tags=["collections"])
def angles_api(map_id: DbId, user: CurrentUser, db: DbSession) -> AngularDistribution:
    """How the particles of a refinement (or a 3D class) spread over view directions: counts
    per tilt (0-180°, 10° bins) and rot (-180-180°, 10° bins)."""
    found = _recorded(db, user, map_id)
    assert found.path is not None
    if found.refinement:
        star = refinement_files(Path(found.path)).run_data
    else:
        star = Path(found.path).parent / "run_data.star"
    path = _served(db, found, star, "run_data.star")
    number = None if found.refinement else _class_number(Path(found.path))
    try:
        angles = read_angles(path, class_number=number)
    except BadInputError as exc:
        raise HTTPException(422, "The angles of these particles cannot be read.") from exc
    counts, _, _ = np.histogram2d(
        angles[:, 1],
        ((angles[:, 0] + 180.0) % 360.0) - 180.0,
        bins=(TILT_BINS, ROT_BINS),
        range=((0, 180), (-180, 180)),
    )
    return AngularDistribution(
        particles=len(angles),
        tilt_deg=[5.0 + 10.0 * i for i in range(TILT_BINS)],
        rot_deg=[-175.0 + 10.0 * i for i in range(ROT_BINS)],
        counts=counts.astype(int).tolist(),
    )
