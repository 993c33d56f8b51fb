"""The simulator's EPU visit with every delivery fault, watched while it is being written: the
watcher scans after each movie the simulator writes (late XML, half-written movies, integrated
images, links to another visit's movies, a second optics setting), then the daily check compares
the database with the simulator's truth: every movie registered once, with its own defocus and
dose, on its foil hole, grid square and atlas, one data collection per optics, no non-movie."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from ispyb.sqlalchemy import DataCollection, Movie

from cryolive.check import check_registration
from cryolive.db import make_engine, session_factory, upgrade
from cryolive.messaging.recipe import load_recipe
from cryolive.pipeline.grid_scan import GridScanner
from cryolive.pipeline.runtime import recipe_path
from cryolive.pipeline.watcher import Watcher
from cryolive.simulate import FaultRates, VisitConfig, simulate_visit


class _Recording:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def publish(self, queue: str, body: bytes, **_: object) -> None:
        self.sent.append((queue, body))


@pytest.mark.parametrize("detector", ["tiny", "falcon-tiny"])
def test_a_faulty_epu_visit_registers_as_its_truth_says(tmp_path: Path, detector: str) -> None:
    visit_dir = tmp_path / "bi23047-5"
    config = VisitConfig(
        n_grids=2,
        movies_per_grid=12,
        movies_per_foil_hole=2,
        foil_holes_per_square=3,
        detector=detector,
        faults=FaultRates(
            late_metadata=0.3,
            stalled_writer=0.3,
            integrated_image=0.5,
            foreign_symlink=0.5,
            optics_change=1.0,
        ),
        seed=11,
    )
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    sessions = session_factory(engine)
    transport = _Recording()
    watcher = Watcher(
        visit_dir=visit_dir,
        visit="bi23047-5",
        sessions=sessions,
        transport=transport,  # type: ignore[arg-type]
        recipe=load_recipe(recipe_path("spa-preprocess")),
        settle_s=1.0,
        grid=GridScanner(sessions, visit_dir),
    )
    clock = [0.0]

    def scan(*_: int) -> None:  # the microscope writes, the watcher polls meanwhile
        if visit_dir.exists():
            clock[0] += 1.0
            watcher.scan_once(clock[0])

    truth = simulate_visit(config, visit_dir, progress=scan)
    for _ in range(6):  # after the last file: until everything has settled
        scan()
    kinds = {fault.kind for fault in truth.faults}
    assert {"late_metadata", "stalled_writer", "foreign_symlink"} <= kinds

    with sessions() as session:
        report = check_registration(session, visit_dir=visit_dir)
        assert report.ok, report.summary()
        n_movies = session.scalar(sa.select(sa.func.count()).select_from(Movie))
        n_collections = session.scalar(sa.select(sa.func.count()).select_from(DataCollection))
    planted = sum(len(grid.movies) for grid in truth.grids)
    assert n_movies == planted  # nothing else registered
    assert n_collections == 4  # two grids, two optics settings each
    started = {body for _, body in transport.sent}
    assert len(started) == planted  # each movie's processing started once
    engine.dispose()


def test_the_check_sees_a_movie_registered_twice(tmp_path: Path) -> None:
    """The check itself fails when the registration is wrong (a duplicate row)."""
    visit_dir = tmp_path / "v"
    simulate_visit(VisitConfig(movies_per_grid=2, seed=3), visit_dir)
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    sessions = session_factory(engine)
    watcher = Watcher(
        visit_dir=visit_dir,
        visit="bi23047-5",
        sessions=sessions,
        transport=_Recording(),  # type: ignore[arg-type]
        recipe=load_recipe(recipe_path("spa-preprocess")),
        settle_s=1.0,
        grid=GridScanner(sessions, visit_dir),
    )
    for now in range(4):
        watcher.scan_once(float(now))
    with sessions.begin() as session:
        assert check_registration(session, visit_dir=visit_dir).ok
        row = session.scalars(sa.select(Movie)).first()
        assert row is not None
        session.execute(
            sa.insert(Movie).values(
                dataCollectionId=row.dataCollectionId,
                movieFullPath=row.movieFullPath,
                movieNumber=uuid.uuid4().int % 1000,
            )
        )
    with sessions() as session:
        assert not check_registration(session, visit_dir=visit_dir).ok
    engine.dispose()
