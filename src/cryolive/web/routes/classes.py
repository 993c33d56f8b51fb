"""The 2D class gallery of a data collection, and the class images.

A class image is served under the same rules as a movie's files: the class must belong to a
visit the user may see, and its recorded path, resolved, must lie inside that visit's folders.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from cryolive.db.repo import browse, classes
from cryolive.web import files
from cryolive.web.deps import (
    CsrfChecked,
    CurrentUser,
    DbId,
    DbSession,
    WriterSession,
    require_visit,
)
from cryolive.web.models import ClassBatch, ClassChoiceMade, ClassChoiceRequest, ClassificationRun
from cryolive.web.routes.collections import visible_collection

router = APIRouter()


@router.get("/api/collections/{data_collection_id}/classes", tags=["collections"])
def classes_api(data_collection_id: DbId, user: CurrentUser, db: DbSession) -> list[ClassBatch]:
    """The newest 2D classification of each batch, with its classes (particles, fraction of
    the batch, estimated resolution in Å, selected); ``has_image``: the class average can be
    fetched from ``/api/classes/{particle_classification_id}/image``."""
    visible_collection(db, user, data_collection_id)
    batches = classes.gallery(db, data_collection_id=data_collection_id)
    return [ClassBatch.model_validate(b) for b in batches]


@router.get("/api/collections/{data_collection_id}/classes/history", tags=["collections"])
def class_history_api(
    data_collection_id: DbId, user: CurrentUser, db: DbSession
) -> list[ClassificationRun]:
    """Every 2D classification of the collection's batches, oldest first (a batch classified
    again with more particles appears once per classification)."""
    visible_collection(db, user, data_collection_id)
    runs = browse.classification_history(db, data_collection_id=data_collection_id)
    return [ClassificationRun.model_validate(r) for r in runs]


@router.post(
    "/api/classes/{particle_classification_id}/choice",
    tags=["collections"],
    dependencies=[CsrfChecked],
)
def choose_class(
    particle_classification_id: DbId,
    choice: ClassChoiceRequest,
    user: CurrentUser,
    db: DbSession,
    writer: WriterSession,
) -> ClassChoiceMade:
    """Select (``true``) or deselect (``false``) a 2D class over the engine's automatic
    selection, or give it back to the automatic selection (``null``). Members of the visit
    (and staff); the choice decides which particles go on (``selected_particles``)."""
    found = classes.class_image(db, particle_classification_id=particle_classification_id)
    if found is None:
        raise HTTPException(404, f"No 2D class {particle_classification_id}.")
    require_visit(db, user, found[1])
    classes.choose_class(
        writer,
        particle_classification_id=particle_classification_id,
        person_id=user.person_id,
        selected=choice.selected,
    )
    writer.flush()
    if choice.selected is None:
        auto = classes.automatic_selection(
            writer, particle_classification_id=particle_classification_id
        )
        return ClassChoiceMade(
            particle_classification_id=particle_classification_id, selected=auto, chosen_by=None
        )
    return ClassChoiceMade(
        particle_classification_id=particle_classification_id,
        selected=choice.selected,
        chosen_by=user.login,
    )


@router.get(
    "/api/classes/{particle_classification_id}/image",
    tags=["collections"],
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}},
)
def class_image(particle_classification_id: DbId, user: CurrentUser, db: DbSession) -> FileResponse:
    """A 2D class average (PNG)."""
    found = classes.class_image(db, particle_classification_id=particle_classification_id)
    if found is None:
        raise HTTPException(404, f"No 2D class {particle_classification_id}.")
    recorded, session_id = found
    require_visit(db, user, session_id)
    if not recorded:
        raise HTTPException(404, f"2D class {particle_classification_id} has no image.")
    path = files.inside(recorded, files.visit_folders(db, session_id=session_id))
    if path is None:
        raise HTTPException(
            403, f"The image of 2D class {particle_classification_id} is outside its visit."
        )
    if not path.is_file():
        raise HTTPException(404, f"The image of 2D class {particle_classification_id} is missing.")
    return FileResponse(
        path, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"}
    )
