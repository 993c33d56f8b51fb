"""The daily check of registration, on rows written here as a correct watcher would write
them, then broken one way at a time (the bugs of issue #16): each is caught, and only it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from ispyb.sqlalchemy import Atlas, DataCollection, DataCollectionGroup, FoilHole, GridSquare, Movie
from sqlalchemy.orm import Session

from cryolive.check import check_registration
from cryolive.db.repo import visits
from cryolive.simulate import FaultRates, MovieConfig, VisitConfig, VisitTruth, simulate_visit


@pytest.fixture(scope="module")
def visit(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, VisitTruth]:
    out = tmp_path_factory.mktemp("check") / "bi23047-5"
    config = VisitConfig(
        movies_per_grid=8,
        movies_per_foil_hole=2,
        foil_holes_per_square=2,
        movie=MovieConfig(n_frames=3, particle_density=0.05),
        faults=FaultRates(optics_change=1.0, integrated_image=0.5, foreign_symlink=0.5),
        seed=11,
    )
    return out, simulate_visit(config, out)


@dataclass
class Registered:
    movies: dict[str, Movie]  # relative path -> row
    collections: list[DataCollection]
    holes: dict[int, FoilHole]  # label -> row
    squares: dict[int, GridSquare]


def _register(session: Session, visit_dir: Path, truth: VisitTruth) -> Registered:
    """What the watcher and the grid scanner should write for the visit."""
    session_id = visits.ensure_visit(session, visit=truth.visit)
    grid = truth.grids[0]
    group = DataCollectionGroup(sessionId=session_id, experimentType="EM")
    session.add(group)
    session.flush()
    atlas = Atlas(
        dataCollectionGroupId=group.dataCollectionGroupId, atlasImage=grid.atlas, pixelSize=1.95e4
    )
    session.add(atlas)
    session.flush()
    squares, holes = {}, {}
    for s in grid.grid_squares:
        squares[s.label] = GridSquare(atlasId=atlas.atlasId, gridSquareLabel=s.label)
        session.add(squares[s.label])
        session.flush()
        for label in s.foil_holes:
            holes[label] = FoilHole(
                gridSquareId=squares[s.label].gridSquareId, foilHoleLabel=str(label)
            )
            session.add(holes[label])
    collections = {}
    for setting in sorted({m.optics_setting for m in grid.movies}):
        collections[setting] = DataCollection(
            dataCollectionGroupId=group.dataCollectionGroupId,
            SESSIONID=session_id,
            imageDirectory=f"{visit_dir}/raw/",
        )
        session.add(collections[setting])
    session.flush()
    movies = {}
    for number, m in enumerate(grid.movies):
        movies[m.movie] = Movie(
            dataCollectionId=collections[m.optics_setting].dataCollectionId,
            movieNumber=number,
            movieFullPath=str(visit_dir / m.movie),
            nominalDefocus=m.nominal_defocus_a,
            fluence=m.dose_e_per_a2,
            foilHoleId=holes[m.foil_hole or 0].foilHoleId,
        )
        session.add(movies[m.movie])
    session.flush()
    return Registered(movies, list(collections.values()), holes, squares)


def test_a_correct_registration_passes(db: Session, visit: tuple[Path, VisitTruth]) -> None:
    visit_dir, truth = visit
    assert {m.optics_setting for m in truth.grids[0].movies} == {0, 1}
    assert {n.kind for n in truth.grids[0].non_movies} == {"integrated_image", "foreign_symlink"}
    _register(db, visit_dir, truth)
    report = check_registration(db, visit_dir=visit_dir)
    assert report.movies == 8
    assert report.ok, report.summary()


def _first_dose_for_all(db: Session, r: Registered, t: VisitTruth, v: Path) -> None:
    first = next(iter(r.movies.values()))
    for row in r.movies.values():
        row.fluence, row.nominalDefocus = first.fluence, first.nominalDefocus


def _one_collection_for_all(db: Session, r: Registered, t: VisitTruth, v: Path) -> None:
    for row in r.movies.values():
        row.dataCollectionId = r.collections[0].dataCollectionId


def _no_foil_hole(db: Session, r: Registered, t: VisitTruth, v: Path) -> None:
    next(iter(r.movies.values())).foilHoleId = None


def _hole_on_another_square(db: Session, r: Registered, t: VisitTruth, v: Path) -> None:
    first, second = list(r.squares.values())[:2]
    hole = r.holes[t.grids[0].movies[0].foil_hole or 0]
    hole.gridSquareId = (
        second.gridSquareId if hole.gridSquareId == first.gridSquareId else first.gridSquareId
    )


def _integrated_image_registered(db: Session, r: Registered, t: VisitTruth, v: Path) -> None:
    image = next(n for n in t.grids[0].non_movies if n.kind == "integrated_image")
    db.add(
        Movie(dataCollectionId=r.collections[0].dataCollectionId, movieFullPath=str(v / image.path))
    )


def _link_target_registered(db: Session, r: Registered, t: VisitTruth, v: Path) -> None:
    link = next(n for n in t.grids[0].non_movies if n.kind == "foreign_symlink")
    target = str((v / link.path).resolve())
    db.add(Movie(dataCollectionId=r.collections[0].dataCollectionId, movieFullPath=target))


def _registered_twice(db: Session, r: Registered, t: VisitTruth, v: Path) -> None:
    first = next(iter(r.movies.values()))
    db.add(Movie(dataCollectionId=first.dataCollectionId, movieFullPath=first.movieFullPath))


def _lost(db: Session, r: Registered, t: VisitTruth, v: Path) -> None:
    db.delete(r.movies[t.grids[0].movies[-1].movie])


@pytest.mark.parametrize(
    ("breakage", "caught"),
    [
        (_first_dose_for_all, {"wrong_dose", "wrong_defocus"}),
        (_one_collection_for_all, {"mixed_optics"}),
        (_no_foil_hole, {"wrong_foil_hole"}),
        (_hole_on_another_square, {"wrong_grid_square"}),
        (_integrated_image_registered, {"non_movies_registered"}),
        (_link_target_registered, {"non_movies_registered"}),
        (_registered_twice, {"registered_twice"}),
        (_lost, {"not_registered"}),
    ],
)
def test_each_wrong_registration_is_caught(
    db: Session, visit: tuple[Path, VisitTruth], breakage: object, caught: set[str]
) -> None:
    visit_dir, truth = visit
    registered = _register(db, visit_dir, truth)
    breakage(db, registered, truth, visit_dir)  # type: ignore[operator]
    db.flush()
    report = check_registration(db, visit_dir=visit_dir)
    found = {
        k.removeprefix("registration_")
        for k, v in report.summary().items()
        if v and k not in ("registration_movies", "registration_ok")
    }
    assert found == caught
    assert not report.ok
