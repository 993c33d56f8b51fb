"""Atlas, GridSquare and FoilHole rows and Movie.foilHoleId, on both backends: idempotent,
filled in when placeholders exist, and read back with the ``ispyb`` package's models."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from ispyb.sqlalchemy import Atlas, DataCollection, FoilHole, GridSquare, Movie
from sqlalchemy.orm import Session

from cryolive.db.repo import grid, results
from cryolive.records import MovieRecord, MovieRef


def _group_of(db: Session, data_collection_id: int) -> int:
    return int(db.get_one(DataCollection, data_collection_id).dataCollectionGroupId)


def test_rows_written_and_read_back_with_ispyb_models(db: Session, collection: Any) -> None:
    group = _group_of(db, collection.data_collection_id)
    atlas_id = grid.ensure_atlas(
        db,
        data_collection_group_id=group,
        row=grid.AtlasRow(image="/visit/atlas/Atlas_1.jpg", pixel_size_a=3411.5),
    )
    squares = grid.write_grid_squares(
        db,
        atlas_id=atlas_id,
        rows=[
            grid.GridSquareRow(
                label=8999138, x_px=2236.751, y_px=1741.2, width_px=143.2, height_px=134.2,
                stage_x_um=-98.8, stage_y_um=-164.7, pixel_size_a=415.6,
                image="/visit/raw/Images-Disc1/GridSquare_8999138/GridSquare_1.jpg",
            )
        ],
    )  # fmt: skip
    holes = grid.write_foil_holes(
        db,
        grid_square_id=squares[8999138],
        rows=[grid.FoilHoleRow(label=9015883, x_px=1396, y_px=972, diameter_px=51.3)],
    )
    ref = MovieRef(
        data_collection_id=collection.data_collection_id,
        movie_full_path="/visit/raw/Images-Disc1/GridSquare_8999138/Data/FoilHole_9015883_Data_1.tiff",
    )
    results.write_movies(db, records=[MovieRecord(movie=ref, foil_hole_id=holes[9015883])])
    db.flush()
    db.expire_all()

    atlas = db.get_one(Atlas, atlas_id)
    assert (atlas.dataCollectionGroupId, atlas.atlasImage) == (group, "/visit/atlas/Atlas_1.jpg")
    assert atlas.pixelSize == pytest.approx(3411.5)
    square = db.get_one(GridSquare, squares[8999138])
    assert (square.atlasId, square.gridSquareLabel) == (atlas_id, 8999138)
    assert (square.pixelLocationX, square.pixelLocationY) == (2237, 1741)
    assert (square.width, square.height) == (143, 134)
    assert square.stageLocationX == pytest.approx(-98.8)
    assert square.pixelSize == pytest.approx(415.6)
    hole = db.get_one(FoilHole, holes[9015883])
    assert (hole.gridSquareId, hole.foilHoleLabel) == (squares[8999138], "9015883")
    assert (hole.pixelLocationX, hole.pixelLocationY, hole.diameter) == (1396, 972, 51)
    movie = db.scalars(sa.select(Movie).where(Movie.movieFullPath == ref.movie_full_path)).one()
    assert movie.foilHoleId == holes[9015883]


def test_placeholders_are_filled_in_never_duplicated(db: Session, collection: Any) -> None:
    group = _group_of(db, collection.data_collection_id)
    # a movie arrives first: its square and hole exist only as placeholders
    atlas_id = grid.ensure_atlas(db, data_collection_group_id=group)
    square_id = grid.ensure_grid_square(db, atlas_id=atlas_id, label=42)
    hole_id = grid.ensure_foil_hole(db, grid_square_id=square_id, label=4201)
    db.flush()
    assert db.get_one(Atlas, atlas_id).atlasImage == ""
    assert db.get_one(GridSquare, square_id).pixelLocationX is None

    # then their files: the same rows are filled in
    assert grid.ensure_atlas(
        db, data_collection_group_id=group, row=grid.AtlasRow(image="/a.jpg", pixel_size_a=3000)
    ) == atlas_id  # fmt: skip
    grid.write_grid_squares(db, atlas_id=atlas_id, rows=[grid.GridSquareRow(label=42, x_px=10)])
    # a second file telling other things keeps what the first told
    grid.write_grid_squares(
        db, atlas_id=atlas_id, rows=[grid.GridSquareRow(label=42, image="/sq.jpg")]
    )
    grid.write_foil_holes(
        db, grid_square_id=square_id, rows=[grid.FoilHoleRow(label=4201, diameter_px=50)]
    )
    assert grid.ensure_grid_square(db, atlas_id=atlas_id, label=42) == square_id
    assert grid.ensure_foil_hole(db, grid_square_id=square_id, label=4201) == hole_id
    assert grid.ensure_atlas(db, data_collection_group_id=group) == atlas_id
    db.flush()
    db.expire_all()

    assert db.get_one(Atlas, atlas_id).atlasImage == "/a.jpg"
    square = db.get_one(GridSquare, square_id)
    assert (square.pixelLocationX, square.gridSquareImage) == (10, "/sq.jpg")
    assert db.get_one(FoilHole, hole_id).diameter == 50
    counts = [
        db.scalar(sa.select(sa.func.count()).select_from(t).where(w))
        for t, w in (
            (Atlas, Atlas.dataCollectionGroupId == group),
            (GridSquare, GridSquare.atlasId == atlas_id),
            (FoilHole, FoilHole.gridSquareId == square_id),
        )
    ]
    assert counts == [1, 1, 1]


def test_many_placeholders_at_once_keep_existing_rows(db: Session, collection: Any) -> None:
    group = _group_of(db, collection.data_collection_id)
    atlas_id = grid.ensure_atlas(db, data_collection_group_id=group)
    known = grid.write_grid_squares(
        db, atlas_id=atlas_id, rows=[grid.GridSquareRow(label=1, x_px=5)]
    )
    squares = grid.ensure_grid_squares(db, atlas_id=atlas_id, labels=[1, 2, 2, 3])
    assert set(squares) == {1, 2, 3} and squares[1] == known[1]
    holes = grid.ensure_foil_holes(db, grid_square_id=squares[2], labels=[20, 21, 20])
    again = grid.ensure_foil_holes(db, grid_square_id=squares[2], labels=[21, 22])
    assert again[21] == holes[21] and len({*holes.values(), *again.values()}) == 3
    db.flush()
    db.expire_all()
    assert db.get_one(GridSquare, squares[1]).pixelLocationX == 5  # not reset by the placeholder
    count = db.scalar(
        sa.select(sa.func.count()).select_from(GridSquare).where(GridSquare.atlasId == atlas_id)
    )
    assert count == 3
