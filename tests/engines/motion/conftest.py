"""Simulated 1k movies with known drift (the simulator's truth), shared by the motion tests.

Each movie is simulated once per session; ``correct_motion`` runs once per movie too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from cryolive.engines.motion import GainTransform, MotionResult, correct_motion
from cryolive.io.gain import read_gain
from cryolive.io.movies import read_movie
from cryolive.simulate import MovieConfig, VisitConfig, simulate_visit
from cryolive.simulate._truth import MovieTruth

# Realistic dose: 40 e/Å² over 40 frames at 1 Å/px (1 e/px per frame).
_DOSE_E_PER_A2 = 40.0


@dataclass(frozen=True)
class SimulatedMovie:
    frames: np.ndarray  # (n, y, x) uint8 raw counts
    gain_as_stored: np.ndarray  # (y, x) float32
    gain_transform: GainTransform
    truth: MovieTruth
    folder: Path

    @property
    def gain(self) -> np.ndarray:
        return self.gain_transform.apply(self.gain_as_stored)

    @property
    def drift_px(self) -> np.ndarray:
        """(n, 2) planted (dy, dx) of each frame's content relative to frame 0."""
        return np.stack([self.truth.drift_y_px, self.truth.drift_x_px], axis=1)


def simulate(
    folder: Path, *, local_px: float, seed: int, noiseless: bool = False
) -> SimulatedMovie:
    config = VisitConfig(
        movies_per_grid=1, detector="1k", format="mrc" if noiseless else "tiff", seed=seed,
        movie=MovieConfig(n_frames=40, dose_e_per_a2=_DOSE_E_PER_A2, local_motion_px=local_px,
                          noiseless=noiseless),
    )  # fmt: skip
    truth = simulate_visit(config, folder)
    grid = truth.grids[0]
    movie = grid.movies[0]
    assert grid.gain.path is not None
    return SimulatedMovie(
        frames=read_movie(folder / movie.movie),
        gain_as_stored=read_gain(folder / grid.gain.path),
        gain_transform=GainTransform(grid.gain.rotate_deg, grid.gain.flip),  # type: ignore[arg-type]
        truth=movie,
        folder=folder,
    )


def run(movie: SimulatedMovie, **settings: object) -> MotionResult:
    return correct_motion(
        movie.frames, pixel_size_a=movie.truth.pixel_size_a,
        dose_per_frame_e_per_a2=_DOSE_E_PER_A2 / movie.frames.shape[0], gain=movie.gain,
        **settings,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.fixture(scope="session")
def still_movie(tmp_path_factory: pytest.TempPathFactory) -> SimulatedMovie:
    """Whole-frame drift only (no local motion)."""
    return simulate(tmp_path_factory.mktemp("still"), local_px=0.0, seed=11)


@pytest.fixture(scope="session")
def still_noiseless(tmp_path_factory: pytest.TempPathFactory) -> SimulatedMovie:
    """The same exposure as ``still_movie``, rendered without counting noise."""
    return simulate(tmp_path_factory.mktemp("noiseless"), local_px=0.0, seed=11, noiseless=True)


@pytest.fixture(scope="session")
def still_result(still_movie: SimulatedMovie) -> MotionResult:
    return run(still_movie, patches=None)


@pytest.fixture(scope="session")
def local_movie(tmp_path_factory: pytest.TempPathFactory) -> SimulatedMovie:
    """Drift plus local motion of up to 2 px."""
    return simulate(tmp_path_factory.mktemp("local"), local_px=2.0, seed=12)


@pytest.fixture(scope="session")
def local_result(local_movie: SimulatedMovie) -> MotionResult:
    return run(local_movie, patches=(5, 5))


@pytest.fixture(scope="session")
def run_motion() -> object:
    """``run_motion(movie, **settings)``: correct_motion on a simulated movie."""
    return run
