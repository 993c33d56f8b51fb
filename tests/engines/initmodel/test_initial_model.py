"""The de novo initial model against a known map: particles simulated as exact projections of
Gaussian blobs (no central slices), with CTF, noise and origins of up to ±3 px that the engine
is not told (its translation search finds them)."""

from __future__ import annotations

from dataclasses import replace
from types import ModuleType

import numpy as np
import pytest

from cryolive.engines.initial_model import initial_model
from cryolive.engines.recon3d import euler_to_matrix, rotate_volume

BOX, PIXEL_A = 32, 4.0
LOWPASS_A = 20.0  # the model and the truth are compared below this resolution
MIN_CORRELATION = 0.9  # 0.98 with the origins given, 0.81 unknown and not searched


def _model_offset_removed(error_px: np.ndarray, angles_deg: np.ndarray) -> np.ndarray:
    """Per-particle origin errors (n, 2) less the part a 3D shift u of the de novo map explains
    (a map moved by u moves particle i's image by the first two rows of A_i·u), (n,) px."""
    rows = euler_to_matrix(angles_deg)[:, :2, :]
    u, *_ = np.linalg.lstsq(rows.reshape(-1, 3), error_px.reshape(-1), rcond=None)
    return np.hypot(*(error_px - np.einsum("nij,j->ni", rows, u)).T)


def test_initial_model_correlates_with_the_truth_in_either_hand(sim3d: ModuleType) -> None:
    rng = np.random.default_rng(11)
    blobs = sim3d.blobs(rng)
    sim, _ = sim3d.simulate(
        [blobs], [800], rng, box=BOX, pixel_size_a=PIXEL_A, snr=0.2, max_shift_px=3.0
    )  # fmt: skip
    hidden = replace(sim.stack, origins_a=None)
    result = initial_model(hidden, iterations=20, batch_size=150, rng=np.random.default_rng(1))
    assert result.maps.shape == (1, BOX, BOX, BOX)
    assert result.class_sizes.tolist() == [800]
    assert result.search_limit_a == pytest.approx(15.0)
    # its own estimate (half sets): between Nyquist and the 30 Å start
    assert 2 * PIXEL_A < result.resolution_a[0] < 30.0
    corr = sim3d.aligned_correlation(
        result.maps[0], blobs.volume(BOX), euler_to_matrix(result.angles_deg), sim.rotations,
        BOX * PIXEL_A / LOWPASS_A,
    )  # fmt: skip
    assert corr >= MIN_CORRELATION
    # the planted origins, found to within 1 px (up to the de novo map's own shift)
    error = _model_offset_removed(
        (result.origins_a - sim.stack.origins_a) / PIXEL_A, result.angles_deg
    )  # fmt: skip
    assert np.mean(error < 1.0) >= 0.85


def test_symmetry_is_imposed_on_the_model(sim3d: ModuleType) -> None:
    rng = np.random.default_rng(5)
    sim, _ = sim3d.simulate([sim3d.blobs(rng)], [120], rng, box=BOX, pixel_size_a=PIXEL_A)
    turn = euler_to_matrix([[90.0, 0.0, 0.0]])[0]  # a quarter turn about z
    for symmetry, symmetric in (("C4", True), ("C1", False)):
        result = initial_model(
            sim.stack, symmetry=symmetry, iterations=2, batch_size=60, rng=rng
        )  # fmt: skip
        m = result.maps[0]
        corr = float(np.corrcoef(m.ravel(), rotate_volume(m, turn).ravel())[0, 1])
        assert (corr > 0.98) is symmetric, (symmetry, corr)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"classes": 0}, "classes must be at least 1"),
        ({"symmetry": "O"}, "symmetry must be Cn or Dn"),
        ({"iterations": 0}, "iterations must be at least 1"),
        ({"step": 1.5}, "step must lie in"),
        ({"offset_range_px": -1.0}, "offset_range_px must be at least 0"),
        ({"classes": 5}, "need at least 50"),
    ],
)
def test_bad_settings_are_refused(sim3d: ModuleType, kwargs: dict, message: str) -> None:
    rng = np.random.default_rng(0)
    sim, _ = sim3d.simulate([sim3d.blobs(rng, count=5)], [40], rng, box=16)
    with pytest.raises(ValueError, match=message):
        initial_model(sim.stack, rng=rng, **kwargs)
