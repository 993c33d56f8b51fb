"""Read-only views of where on the grid the data came from, for the web: a grid's atlas with
its squares, a square with its holes, a hole's movies, each with statistics of its movies.

Statistics per square and per hole are the means of the movies' results shown on the
collection's page (the run :func:`cryolive.db.repo.series.series` shows): CTF fit resolution
(Å), ice thickness (relative, median), total motion (Å) and particles per micrograph, and
the number of movies collected. Like :mod:`browse`, functions check no permission: each
result carries the ``session_id`` its caller checks.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from ispyb.sqlalchemy import Atlas, DataCollection, DataCollectionGroup, FoilHole, GridSquare, Movie
from sqlalchemy.orm import Session

from cryolive.db.repo import series

Measure = Literal["movies", "resolution_a", "ice_median", "total_motion_a", "particles"]
RESULT_MEASURES: tuple[Measure, ...] = ("resolution_a", "ice_median", "total_motion_a", "particles")


@dataclass(frozen=True)
class Stats:
    """The movies of a square or hole and the means of their results (None: no result)."""

    movies: int = 0
    resolution_a: float | None = None
    ice_median: float | None = None
    total_motion_a: float | None = None
    particles: float | None = None


@dataclass(frozen=True)
class SquareView:
    grid_square_id: int
    label: int | None
    image: str | None
    x_px: int | None  # centre on the atlas image
    y_px: int | None
    width_px: int | None
    height_px: int | None
    angle_deg: float | None
    stage_x_um: float | None
    stage_y_um: float | None
    pixel_size_a: float | None
    stats: Stats = field(default_factory=Stats)


@dataclass(frozen=True)
class HoleView:
    foil_hole_id: int
    label: str
    image: str | None
    x_px: int | None  # centre on the square's image
    y_px: int | None
    diameter_px: int | None
    stage_x_um: float | None
    stage_y_um: float | None
    stats: Stats = field(default_factory=Stats)


@dataclass(frozen=True)
class AtlasView:
    atlas_id: int
    data_collection_group_id: int
    session_id: int
    image: str
    pixel_size_a: float | None
    squares: list[SquareView]


@dataclass(frozen=True)
class SquareDetail:
    square: SquareView
    atlas_id: int
    session_id: int
    data_collection_id: int  # the first of its grid's (for links back)
    holes: list[HoleView]


@dataclass(frozen=True)
class HoleMovie:
    movie_id: int
    data_collection_id: int
    movie_number: int | None
    path: str
    resolution_a: float | None
    ice_median: float | None
    total_motion_a: float | None
    particles: float | None


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _collections(session: Session, group_id: int) -> list[int]:
    return [
        int(i)
        for i in session.scalars(
            sa.select(DataCollection.dataCollectionId).where(
                DataCollection.dataCollectionGroupId == group_id
            )
        )
    ]


def _results(session: Session, group_id: int) -> dict[int, tuple[Any, ...]]:
    """Per movie of the group: (resolution, ice, motion, particles) of the run shown."""
    out: dict[int, tuple[Any, ...]] = {}
    for dc in _collections(session, group_id):
        columns = series.series(session, data_collection_id=dc)
        rows = zip(*(columns[name] for name in ("movie_id", *RESULT_MEASURES)), strict=True)
        out |= {row[0]: row[1:] for row in rows}
    return out


def _stats(values: Iterable[tuple[Any, ...]]) -> Stats:
    rows = list(values)
    means = []
    for index in range(len(RESULT_MEASURES)):
        present = [float(r[index]) for r in rows if r[index] is not None]
        means.append(statistics.fmean(present) if present else None)
    return Stats(len(rows), *means)


def _grouped(
    pairs: Iterable[tuple[int, int]], results: dict[int, tuple[Any, ...]]
) -> dict[int, Stats]:
    """Stats per owner from (owner id, movie id) pairs."""
    by: dict[int, list[tuple[Any, ...]]] = {}
    empty = (None,) * len(RESULT_MEASURES)
    for owner, movie in pairs:
        by.setdefault(owner, []).append(results.get(movie, empty))
    return {owner: _stats(rows) for owner, rows in by.items()}


def _square_view(square: GridSquare, stats: Stats) -> SquareView:
    return SquareView(
        grid_square_id=int(square.gridSquareId),
        label=_int(square.gridSquareLabel),
        image=square.gridSquareImage or None,
        x_px=_int(square.pixelLocationX),
        y_px=_int(square.pixelLocationY),
        width_px=_int(square.width),
        height_px=_int(square.height),
        angle_deg=_float(square.angle),
        stage_x_um=_float(square.stageLocationX),
        stage_y_um=_float(square.stageLocationY),
        pixel_size_a=_float(square.pixelSize),
        stats=stats,
    )


def atlas_of_collection(session: Session, *, data_collection_id: int) -> AtlasView | None:
    """The atlas of a data collection's grid, its squares and their statistics."""
    row = session.execute(
        sa.select(Atlas, DataCollectionGroup.sessionId)
        .join(
            DataCollectionGroup,
            DataCollectionGroup.dataCollectionGroupId == Atlas.dataCollectionGroupId,
        )
        .join(
            DataCollection,
            DataCollection.dataCollectionGroupId == DataCollectionGroup.dataCollectionGroupId,
        )
        .where(DataCollection.dataCollectionId == data_collection_id)
    ).first()
    if row is None:
        return None
    atlas, session_id = row
    group = int(atlas.dataCollectionGroupId)
    pairs = session.execute(
        sa.select(FoilHole.gridSquareId, Movie.movieId)
        .join(Movie, Movie.foilHoleId == FoilHole.foilHoleId)
        .join(GridSquare, GridSquare.gridSquareId == FoilHole.gridSquareId)
        .where(GridSquare.atlasId == atlas.atlasId)
    )
    stats = _grouped(((int(s), int(m)) for s, m in pairs), _results(session, group))
    squares = session.scalars(
        sa.select(GridSquare)
        .where(GridSquare.atlasId == atlas.atlasId)
        .order_by(GridSquare.gridSquareLabel)
    )
    return AtlasView(
        atlas_id=int(atlas.atlasId),
        data_collection_group_id=group,
        session_id=int(session_id),
        image=str(atlas.atlasImage or ""),
        pixel_size_a=_float(atlas.pixelSize) or None,
        squares=[_square_view(s, stats.get(int(s.gridSquareId), Stats())) for s in squares],
    )


def _owner(session: Session, grid_square_id: int) -> tuple[GridSquare, int, int] | None:
    row = session.execute(
        sa.select(GridSquare, Atlas.dataCollectionGroupId, DataCollectionGroup.sessionId)
        .join(Atlas, Atlas.atlasId == GridSquare.atlasId)
        .join(
            DataCollectionGroup,
            DataCollectionGroup.dataCollectionGroupId == Atlas.dataCollectionGroupId,
        )
        .where(GridSquare.gridSquareId == grid_square_id)
    ).first()
    return None if row is None else (row[0], int(row[1]), int(row[2]))


def grid_square(session: Session, *, grid_square_id: int) -> SquareDetail | None:
    """A grid square, its foil holes and their statistics."""
    found = _owner(session, grid_square_id)
    if found is None:
        return None
    square, group, session_id = found
    results = _results(session, group)
    pairs = [
        (int(h), int(m))
        for h, m in session.execute(
            sa.select(Movie.foilHoleId, Movie.movieId)
            .join(FoilHole, FoilHole.foilHoleId == Movie.foilHoleId)
            .where(FoilHole.gridSquareId == grid_square_id)
        )
    ]
    stats = _grouped(pairs, results)
    holes = [
        HoleView(
            foil_hole_id=int(h.foilHoleId),
            label=str(h.foilHoleLabel),
            image=h.foilHoleImage or None,
            x_px=_int(h.pixelLocationX),
            y_px=_int(h.pixelLocationY),
            diameter_px=_int(h.diameter),
            stage_x_um=_float(h.stageLocationX),
            stage_y_um=_float(h.stageLocationY),
            stats=stats.get(int(h.foilHoleId), Stats()),
        )
        for h in session.scalars(
            sa.select(FoilHole)
            .where(FoilHole.gridSquareId == grid_square_id)
            .order_by(FoilHole.foilHoleId)
        )
    ]
    empty = (None,) * len(RESULT_MEASURES)
    square_stats = _stats(results.get(movie, empty) for _, movie in pairs)
    return SquareDetail(
        square=_square_view(square, square_stats),
        atlas_id=int(square.atlasId),
        session_id=session_id,
        data_collection_id=min(_collections(session, group), default=0),
        holes=holes,
    )


def hole_movies(session: Session, *, foil_hole_id: int) -> tuple[int, list[HoleMovie]] | None:
    """(session id, the movies taken in a foil hole with their results), None: no hole."""
    row = session.execute(
        sa.select(FoilHole.gridSquareId).where(FoilHole.foilHoleId == foil_hole_id)
    ).first()
    owner = None if row is None else _owner(session, int(row[0]))
    if owner is None:
        return None
    _, group, session_id = owner
    results = _results(session, group)
    empty = (None,) * len(RESULT_MEASURES)
    movies = []
    for movie_id, dc, number, path in session.execute(
        sa.select(Movie.movieId, Movie.dataCollectionId, Movie.movieNumber, Movie.movieFullPath)
        .where(Movie.foilHoleId == foil_hole_id)
        .order_by(Movie.movieId)
    ):
        values = results.get(int(movie_id), empty)
        movies.append(
            HoleMovie(int(movie_id), int(dc), _int(number), str(path or ""), *map(_float, values))
        )
    return session_id, movies
