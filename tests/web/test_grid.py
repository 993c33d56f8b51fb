"""The atlas, grid square and foil hole API: squares and holes with their statistics (means of
the web world's results, worked out by hand below), images inside the visit only."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from ispyb.sqlalchemy import Atlas, DataCollection

from cryolive.db import make_engine

# The world's 12 movies: resolution 3 + 0.25 i Å, motion 10 + i Å, ice 0.5 + 0.01 i,
# particles 100 + i; movies 0-3 in hole 71, 4-7 in hole 72 (both on square 7), 8-11 in hole 81.


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def test_atlas_squares_and_their_statistics(clients: Any, world: Any) -> None:
    client, _ = clients["member"]
    atlas = client.get(f"/api/collections/{world.data_collection_id}/atlas").json()
    assert atlas["has_image"] and atlas["pixel_size_a"] == pytest.approx(3400)
    squares = {s["label"]: s for s in atlas["squares"]}
    assert set(squares) == {7, 8}
    seven, eight = squares[7], squares[8]
    assert (seven["x_px"], seven["y_px"], seven["width_px"]) == (50, 60, 30)
    assert seven["stats"]["movies"] == 8 and eight["stats"]["movies"] == 4
    assert seven["stats"]["resolution_a"] == pytest.approx(_mean([3 + 0.25 * i for i in range(8)]))
    assert eight["stats"]["total_motion_a"] == pytest.approx(_mean([10 + i for i in range(8, 12)]))
    assert seven["stats"]["ice_median"] == pytest.approx(_mean([0.5 + 0.01 * i for i in range(8)]))
    assert eight["stats"]["particles"] == pytest.approx(_mean([100 + i for i in range(8, 12)]))
    image = client.get(f"/api/collections/{world.data_collection_id}/atlas/image")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")


def test_a_grid_square_its_holes_and_a_holes_movies(clients: Any, world: Any) -> None:
    client, _ = clients["member"]
    square = client.get(f"/api/grid-squares/{world.grid_square_id}").json()
    assert square["label"] == 7 and square["data_collection_id"] == world.data_collection_id
    holes = {h["label"]: h for h in square["holes"]}
    assert set(holes) == {"71", "72"}
    assert (holes["71"]["x_px"], holes["71"]["y_px"], holes["71"]["diameter_px"]) == (30, 30, 20)
    assert holes["72"]["stats"]["movies"] == 4
    assert holes["72"]["stats"]["total_motion_a"] == pytest.approx(_mean([14, 15, 16, 17]))
    assert square["stats"]["movies"] == 8
    image = client.get(f"/api/grid-squares/{world.grid_square_id}/image")
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")

    movies = client.get(f"/api/foil-holes/{world.foil_hole_id}/movies").json()
    assert [m["path"] for m in movies] == [f"/data/raw/FoilHole_{i}.tiff" for i in range(4)]
    assert [m["movie_id"] for m in movies] == world.movie_ids[:4]
    assert movies[1]["resolution_a"] == pytest.approx(3.25)


def test_missing_things_are_404_with_a_message(clients: Any, world: Any) -> None:
    client, _ = clients["member"]
    for url in (
        f"/api/collections/{world.outside_collection_id}/atlas",  # raw2 has no atlas
        "/api/grid-squares/999999",
        "/api/foil-holes/999999/movies",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.json()["detail"]
    outsider, _ = clients["outsider"]
    assert outsider.get(f"/api/grid-squares/{world.grid_square_id}").status_code == 403


def test_an_atlas_image_recorded_outside_the_visit_is_refused(clients: Any, world: Any) -> None:
    client, _ = clients["member"]
    engine = make_engine(world.url)
    with engine.begin() as connection:
        group = connection.scalar(
            sa.select(DataCollection.dataCollectionGroupId).where(
                DataCollection.dataCollectionId == world.data_collection_id
            )
        )
        where = Atlas.dataCollectionGroupId == group
        recorded = connection.scalar(sa.select(Atlas.atlasImage).where(where))
        secret = str(world.root.parent / "secret.png")
        connection.execute(sa.update(Atlas).where(where).values(atlasImage=secret))
    try:
        response = client.get(f"/api/collections/{world.data_collection_id}/atlas/image")
        assert response.status_code == 403
        assert "outside" in response.json()["detail"]
    finally:
        with engine.begin() as connection:
            connection.execute(sa.update(Atlas).where(where).values(atlasImage=recorded))
        engine.dispose()


def test_an_mrc_atlas_is_served_as_a_png_preview(clients: Any, world: Any) -> None:
    import mrcfile
    import numpy as np

    client, _ = clients["member"]
    mrc = world.root / world.visit / "atlas" / "Sample2" / "Atlas_1.mrc"
    mrc.parent.mkdir(parents=True, exist_ok=True)
    image = np.random.default_rng(0).normal(size=(2000, 2500)).astype(np.float32)
    mrcfile.write(mrc, image, overwrite=True)
    engine = make_engine(world.url)
    with engine.begin() as connection:
        group = connection.scalar(
            sa.select(DataCollection.dataCollectionGroupId).where(
                DataCollection.dataCollectionId == world.data_collection_id
            )
        )
        where = Atlas.dataCollectionGroupId == group
        recorded = connection.scalar(sa.select(Atlas.atlasImage).where(where))
        connection.execute(sa.update(Atlas).where(where).values(atlasImage=str(mrc)))
    try:
        atlas = client.get(f"/api/collections/{world.data_collection_id}/atlas").json()
        assert atlas["has_image"]
        assert (atlas["frame_width_px"], atlas["frame_height_px"]) == (2500, 2000)
        response = client.get(f"/api/collections/{world.data_collection_id}/atlas/image")
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        width, height = (
            int.from_bytes(response.content[16:20]),
            int.from_bytes(response.content[20:24]),
        )
        assert (width, height) == (833, 666)  # binned by 3: at most 1024 px a side
    finally:
        with engine.begin() as connection:
            connection.execute(sa.update(Atlas).where(where).values(atlasImage=recorded))
        engine.dispose()
