"""RELION's own motion correction through the adapter, on a small simulated movie.

Skips when ``relion_run_motioncorr`` is not on PATH (Debian: ``apt-get install relion``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cryolive.adapters.relion_motioncorr import (
    RelionMotionError,
    find_relion_motioncorr,
    run_relion_motioncorr,
)
from cryolive.engines.motion import GainTransform
from cryolive.io.gain import read_gain
from cryolive.simulate import MovieConfig, VisitConfig, simulate_visit

needs_relion = pytest.mark.skipif(
    find_relion_motioncorr() is None, reason="relion_run_motioncorr is not on PATH"
)


@needs_relion
def test_relion_recovers_the_planted_drift_in_cryolives_convention(tmp_path: Path) -> None:
    movie_config = MovieConfig(n_frames=20, dose_e_per_a2=20.0, drift_total_px=5.0)
    config = VisitConfig(movies_per_grid=1, detector="tiny", shape_px=(512, 512), seed=3,
                         movie=movie_config)  # fmt: skip
    truth = simulate_visit(config, tmp_path / "visit")
    grid = truth.grids[0]
    assert grid.gain.path is not None
    gain = GainTransform(grid.gain.rotate_deg, grid.gain.flip).apply(  # type: ignore[arg-type]
        read_gain(tmp_path / "visit" / grid.gain.path)
    )
    movie = grid.movies[0]
    result = run_relion_motioncorr(tmp_path / "visit" / movie.movie, tmp_path / "relion",
                                   pixel_size_a=1.0, dose_per_frame_e_per_a2=1.0, gain=gain,
                                   patches=(1, 1))  # fmt: skip
    planted = np.stack([movie.drift_y_px, movie.drift_x_px], axis=1)
    assert np.abs(planted[-1]).max() > 2.0
    error = result.shifts_px - planted
    error -= error.mean(axis=0)
    # A 512 px, 20-frame movie: RELION's per-frame error is a few tenths of a pixel.
    assert np.sqrt(np.mean(np.sum(error**2, axis=1))) < 0.5
    assert result.dose_weighted_sum.shape == (512, 512)
    assert result.plain_sum.dtype == np.float32
    assert result.total_motion_a > 0
    assert result.early_motion_a + result.late_motion_a == pytest.approx(result.total_motion_a,
                                                                         rel=1e-3)  # fmt: skip


@needs_relion
def test_a_broken_movie_is_a_relion_motion_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken_fractions.tiff"
    broken.write_bytes(b"II*\x00" + b"\x00" * 64)
    with pytest.raises(RelionMotionError, match="failed"):
        run_relion_motioncorr(broken, tmp_path / "relion", pixel_size_a=1.0,
                              dose_per_frame_e_per_a2=1.0, timeout_s=60)  # fmt: skip
