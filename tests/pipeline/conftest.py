"""Fixtures for end-to-end tests: small simulated visits, and a pipeline to run them through."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from ispyb.sqlalchemy import Movie
from sqlalchemy.orm import Session

from cryolive.db.ledger import open_items
from cryolive.simulate import FaultRates, MovieConfig, VisitConfig, simulate_visit

# Small but real: 1k movies of 8 frames (CTF needs more than the 256² test detector gives),
# of the easy preset: these tests need some particles, not a fair measure of the engines.
SMALL_MOVIES = MovieConfig.preset("easy", n_frames=8)


def simulated(root: Path, name: str, **config: object) -> Path:
    visit = root / name
    simulate_visit(VisitConfig(detector="1k", movie=SMALL_MOVIES, **config), visit)  # type: ignore[arg-type]
    return visit


@pytest.fixture(scope="session")
def two_grid_visit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A visit with two grids (raw, raw2) of three movies each, written once per session."""
    return simulated(tmp_path_factory.mktemp("sim"), "clean", n_grids=2, movies_per_grid=3)


@pytest.fixture(scope="session")
def faulty_visit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One grid of eight MRC movies (which can hold NaN): with seed 0 these rates plant six
    faults — NaN pixels, two empty files, two truncated movies, corrupt metadata."""
    faults = FaultRates(truncated=0.15, zero_byte=0.15, corrupt_xml=0.15, nan_pixels=0.15)
    return simulated(
        tmp_path_factory.mktemp("sim"),
        "faulty",
        n_grids=1,
        movies_per_grid=8,
        faults=faults,
        format="mrc",
        seed=0,
    )


@pytest.fixture
def visit_copy(tmp_path: Path) -> Callable[[Path], Path]:
    """A private copy of a simulated visit (processing writes into the visit folder)."""

    def copy(source: Path) -> Path:
        target = tmp_path / source.name
        shutil.copytree(source, target)
        return target

    return copy


def wait_until_done(
    session_of: Callable[[], Session], *, movies: int, timeout_s: float = 300.0
) -> None:
    """Wait until ``movies`` movies are registered and no work is open."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        with session_of() as session:
            registered = session.scalar(sa.select(sa.func.count()).select_from(Movie))
            if registered is not None and registered >= movies and open_items(session) == 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"pipeline did not finish {movies} movies in {timeout_s} s")


@pytest.fixture
def done() -> Callable[..., None]:
    return wait_until_done


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'pipeline.sqlite'}"
