"""Motion correction against the simulator's truth (1k x 1k x 40 frames, 1 e/Å² per frame),
on its realistic default (issue 23: settle + creep + jitter drift, particles at their contrast
against the ice, ice texture).

Tolerances, from runs of these seeds with some headroom: whole-frame drift RMSE 0.12 px
(found 0.073 on the realistic default; 0.06-0.09 on seeds 11-13; the goal of issue 23 is
< 0.25 px at 4k x 40); with 2 px of local motion, the per-tile motion RMSE 0.15 px with the
patch field against more than 0.18 px from whole-frame shifts alone. The sum's correlation
with the noiseless image: within 0.5 % of what the planted shifts give on the easy preset,
1.3 % short on the realistic default (0.447 against 0.453): held at 2 % (BENCHMARKS.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from cryolive.engines.motion import shift_and_sum


def _rmse(found: np.ndarray, planted: np.ndarray) -> float:
    """RMS distance (px) between two trajectories after removing their mean offset."""
    diff = found - planted
    diff = diff - diff.mean(axis=tuple(range(diff.ndim - 1)), keepdims=True)
    return float(np.sqrt(np.mean(np.sum(diff**2, axis=-1))))


def test_whole_frame_drift_is_recovered_within_0_12_px_rmse(
    still_movie: Any, still_result: Any
) -> None:
    planted = still_movie.drift_px
    assert np.abs(planted).max() > 2.0, "the test needs a drift worth recovering"
    assert _rmse(still_result.shifts_px, planted) < 0.12
    assert _rmse(np.zeros_like(planted), planted) > 0.5
    np.testing.assert_array_equal(still_result.shifts_px[0], [0.0, 0.0])


def test_motion_lengths_are_the_path_of_the_found_shifts(
    still_movie: Any, still_result: Any
) -> None:
    shifts, pixel_a = still_result.shifts_px, still_movie.truth.pixel_size_a
    steps = np.linalg.norm(np.diff(shifts, axis=0), axis=1) * pixel_a
    assert still_result.total_motion_a == pytest.approx(steps.sum())
    # 1 e/Å² per frame: the steps into frames ending at 2, 3, 4 e/Å² are early (RELION's 4).
    assert still_result.early_motion_a == pytest.approx(steps[:3].sum())
    assert still_result.late_motion_a == pytest.approx(steps[3:].sum())
    # The net displacement, less noisy than the path length, is the planted one.
    net = np.linalg.norm(shifts[-1] - shifts[0]) * pixel_a
    planted = np.linalg.norm(still_movie.drift_px[-1]) * pixel_a
    assert net == pytest.approx(planted, abs=0.15 * pixel_a)


def test_local_motion_field_beats_whole_frame_shifts(local_movie: Any, local_result: Any) -> None:
    local = local_movie.truth.local_motion
    assert local is not None
    yy, xx = np.meshgrid(local.centres_y_px, local.centres_x_px, indexing="ij")
    n = local_movie.frames.shape[0]
    planted_local = np.stack([np.array(local.dy_px), np.array(local.dx_px)], axis=-1)
    planted = local_movie.drift_px[:, None, :] + planted_local.reshape(n, -1, 2)
    field = local_result.patch_field
    assert field is not None
    assert field.shrink > 0.9  # 2 px of local motion stands far above the patches' noise
    found = local_result.shifts_px[:, None, :] + field.at(yy.ravel(), xx.ravel())
    whole_only = np.repeat(local_result.shifts_px[:, None, :], planted.shape[1], axis=1)
    # Only motion counts: each tile's mean position over the movie is not observable.
    planted = planted - planted.mean(axis=0)
    assert _rmse(found - found.mean(axis=0), planted) < 0.15
    assert _rmse(whole_only - whole_only.mean(axis=0), planted) > 0.18
    assert _rmse(local_result.shifts_px, local_movie.drift_px) < 0.15


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float64) - a.mean()
    b = b.astype(np.float64) - b.mean()
    return float(np.vdot(a, b) / np.sqrt(np.vdot(a, a) * np.vdot(b, b)))


def test_sum_correlates_with_the_noiseless_image_as_well_as_the_true_shifts_give(
    still_movie: Any, still_noiseless: Any, still_result: Any
) -> None:
    """Margin: 2 % of the correlation reached with the planted shifts (measured 1.3 % short
    on the realistic default; 0.5 % held on the easy preset before issue 23)."""
    reference = still_noiseless.frames[0].astype(np.float32)
    settings = dict(pixel_size_a=1.0, dose_per_frame_e_per_a2=1.0, gain=still_movie.gain,
                    defects=still_result.defects)  # fmt: skip
    with_truth, _ = shift_and_sum(still_movie.frames, still_movie.drift_px, **settings)
    unaligned, _ = shift_and_sum(still_movie.frames, np.zeros((40, 2)), **settings)
    ours = _correlation(still_result.plain_sum, reference)
    best = _correlation(with_truth, reference)
    assert ours >= best * (1 - 0.02)
    assert _correlation(unaligned, reference) < best * 0.9, "alignment must matter here"


def test_dose_weighted_sum_has_the_plain_sums_low_resolution_content(still_result: Any) -> None:
    plain = np.fft.rfft2(still_result.plain_sum.astype(np.float64))
    weighted = np.fft.rfft2(still_result.dose_weighted_sum.astype(np.float64))
    k = np.hypot(np.fft.fftfreq(1024)[:, None], np.fft.rfftfreq(1024)[None, :])
    low = (k > 0) & (k < 1 / 40)  # below 1/40 1/Å damage hardly acts
    ratio = np.abs(weighted[low]).sum() / np.abs(plain[low]).sum()
    assert 0.97 < ratio < 1.1
    high = k > 0.4  # near Nyquist (0.5 1/Å) the weighting keeps only white-noise power
    power = (np.abs(weighted[high]) ** 2).mean() / (np.abs(plain[high]) ** 2).mean()
    assert 0.8 < power < 1.2
    assert still_result.dose_weighted_sum.dtype == np.float32
    assert still_result.plain_sum.dtype == np.float32
