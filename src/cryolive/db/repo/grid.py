"""Where on the grid: ISPyB's Atlas, GridSquare and FoilHole rows, written as EPU's files appear.

One Atlas per DataCollectionGroup (one grid per raw folder), its GridSquares keyed on EPU's
grid square id (``gridSquareLabel``), their FoilHoles keyed on EPU's foil hole id
(``foilHoleLabel``). Every write is idempotent and fills in: a row first created as a
placeholder (a movie's path names its square and hole before their own files appear) gets
its positions and image when they come, and only the values given are written, so what one
file told is never erased by another that does not tell it.

Units: stage positions in µm, pixel sizes in Å, pixel positions and sizes in pixels of the
image the row names (the atlas image for a square, the square's image for a hole). An Atlas
whose file has not been read yet holds ``atlasImage`` '' and ``pixelSize`` 0 (both NOT NULL
in ISPyB).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ispyb.sqlalchemy import Atlas, DataCollection, FoilHole, GridSquare
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from cryolive.db.repo._keys import lookup, table_of, upsert, upsert_many

_ATLAS, _SQUARE, _HOLE = table_of(Atlas), table_of(GridSquare), table_of(FoilHole)


class AtlasRow(BaseModel):
    """What is known of a grid's atlas."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    image: str | None = Field(default=None, max_length=255)
    pixel_size_a: float | None = Field(default=None, gt=0)
    cassette_slot: int | None = None


class GridSquareRow(BaseModel):
    """What is known of one grid square (any field None: not known from this file)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    label: int = Field(ge=0, description="EPU's grid square id")
    image: str | None = Field(default=None, max_length=255)
    x_px: float | None = Field(default=None, description="centre on the atlas image")
    y_px: float | None = None
    width_px: float | None = None
    height_px: float | None = None
    angle_deg: float | None = None
    stage_x_um: float | None = None
    stage_y_um: float | None = None
    pixel_size_a: float | None = Field(default=None, gt=0, description="of its own image")


class FoilHoleRow(BaseModel):
    """What is known of one foil hole (any field None: not known from this file)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    label: int = Field(ge=0, description="EPU's foil hole id")
    image: str | None = Field(default=None, max_length=255)
    x_px: float | None = Field(default=None, description="centre on the square's image")
    y_px: float | None = None
    diameter_px: float | None = None
    stage_x_um: float | None = None
    stage_y_um: float | None = None
    pixel_size_a: float | None = Field(default=None, gt=0, description="of its own image")


def _round(value: float | None) -> int | None:
    return None if value is None else round(value)


def _given(values: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def ensure_atlas(
    session: Session, *, data_collection_group_id: int, row: AtlasRow | None = None
) -> int:
    """The Atlas id of a DataCollectionGroup: created (as a placeholder without ``row``) on
    the first call, filled in with what ``row`` gives."""
    key = ("atlas", data_collection_group_id)
    found = lookup(session, table=_ATLAS, keys=[key])
    values = _given(
        {
            "atlasImage": row.image if row else None,
            "pixelSize": row.pixel_size_a if row else None,
            "cassetteSlot": row.cassette_slot if row else None,
        }
    )
    if key in found and not values:
        return found[key]
    if key not in found:
        values = {"atlasImage": "", "pixelSize": 0.0} | values
    values = {"dataCollectionGroupId": data_collection_group_id} | values
    return upsert(session, table=_ATLAS, key=key, values=values)


def write_grid_squares(
    session: Session, *, atlas_id: int, rows: Sequence[GridSquareRow]
) -> dict[int, int]:
    """Insert or fill in grid squares; their ids by label."""
    values = [
        (
            (atlas_id, row.label),
            {"atlasId": atlas_id, "gridSquareLabel": row.label}
            | _given(
                {
                    "gridSquareImage": row.image,
                    "pixelLocationX": _round(row.x_px),
                    "pixelLocationY": _round(row.y_px),
                    "width": _round(row.width_px),
                    "height": _round(row.height_px),
                    "angle": row.angle_deg,
                    "stageLocationX": row.stage_x_um,
                    "stageLocationY": row.stage_y_um,
                    "pixelSize": row.pixel_size_a,
                }
            ),
        )
        for row in rows
    ]
    ids = upsert_many(session, table=_SQUARE, rows=values)
    return {row.label: row_id for row, row_id in zip(rows, ids, strict=True)}


def write_foil_holes(
    session: Session, *, grid_square_id: int, rows: Sequence[FoilHoleRow]
) -> dict[int, int]:
    """Insert or fill in the foil holes of a grid square; their ids by label."""
    values = [
        (
            (grid_square_id, row.label),
            {"gridSquareId": grid_square_id, "foilHoleLabel": str(row.label)}
            | _given(
                {
                    "foilHoleImage": row.image,
                    "pixelLocationX": _round(row.x_px),
                    "pixelLocationY": _round(row.y_px),
                    "diameter": _round(row.diameter_px),
                    "stageLocationX": row.stage_x_um,
                    "stageLocationY": row.stage_y_um,
                    "pixelSize": row.pixel_size_a,
                }
            ),
        )
        for row in rows
    ]
    ids = upsert_many(session, table=_HOLE, rows=values)
    return {row.label: row_id for row, row_id in zip(rows, ids, strict=True)}


def ensure_grid_squares(
    session: Session, *, atlas_id: int, labels: Iterable[int]
) -> dict[int, int]:
    """The ids of grid squares by label, those not recorded yet created as placeholders
    (existing rows are left as they are)."""
    wanted = sorted(set(labels))
    found = lookup(session, table=_SQUARE, keys=[(atlas_id, label) for label in wanted])
    ids = {int(key[1]): row_id for key, row_id in found.items()}  # type: ignore[call-overload]
    missing = [GridSquareRow(label=label) for label in wanted if label not in ids]
    return ids | write_grid_squares(session, atlas_id=atlas_id, rows=missing)


def ensure_foil_holes(
    session: Session, *, grid_square_id: int, labels: Iterable[int]
) -> dict[int, int]:
    """The ids of a square's foil holes by label, missing ones created as placeholders."""
    wanted = sorted(set(labels))
    found = lookup(session, table=_HOLE, keys=[(grid_square_id, label) for label in wanted])
    ids = {int(key[1]): row_id for key, row_id in found.items()}  # type: ignore[call-overload]
    missing = [FoilHoleRow(label=label) for label in wanted if label not in ids]
    return ids | write_foil_holes(session, grid_square_id=grid_square_id, rows=missing)


def ensure_grid_square(session: Session, *, atlas_id: int, label: int) -> int:
    """:func:`ensure_grid_squares` for one square."""
    return ensure_grid_squares(session, atlas_id=atlas_id, labels=[label])[label]


def ensure_foil_hole(session: Session, *, grid_square_id: int, label: int) -> int:
    """:func:`ensure_foil_holes` for one hole."""
    return ensure_foil_holes(session, grid_square_id=grid_square_id, labels=[label])[label]


def group_of(session: Session, *, data_collection_id: int) -> int:
    """The DataCollectionGroup of a data collection (LookupError if there is none)."""
    found = session.get(DataCollection, data_collection_id)
    if found is None:
        raise LookupError(f"DataCollection: no row {data_collection_id}")
    return int(found.dataCollectionGroupId)
