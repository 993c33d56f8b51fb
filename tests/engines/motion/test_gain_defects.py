"""Gain orientation found from the movie itself; hot and dead pixels found and replaced."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from cryolive.engines.motion import (
    GainTransform,
    corrected_frame,
    detect_gain_orientation,
    find_defects,
)


@pytest.mark.parametrize("stored_as", GainTransform.all(), ids=lambda t: f"{t.rotate_deg}{t.flip}")
def test_each_of_the_8_gain_orientations_is_recovered_with_confidence(
    still_movie: Any, stored_as: GainTransform
) -> None:
    """The camera stored the movie's gain turned by ``stored_as`` (inverted); find it back."""
    gain = still_movie.gain  # in the movie's orientation
    stored = stored_as.invert(gain)
    found = detect_gain_orientation(still_movie.frames.sum(axis=0), stored)
    np.testing.assert_allclose(found.transform.apply(stored), gain)
    assert found.confident, found.describe()
    assert "confident" in found.describe()


def test_the_simulators_own_gain_orientation_is_recovered(still_movie: Any) -> None:
    found = detect_gain_orientation(still_movie.frames.sum(axis=0), still_movie.gain_as_stored)
    np.testing.assert_allclose(found.transform.apply(still_movie.gain_as_stored), still_movie.gain)
    assert found.separation_sigma > 20


def test_a_flat_gain_gives_no_confident_orientation(rng: np.random.Generator) -> None:
    frames_sum = rng.poisson(40.0, size=(256, 256)).astype(np.float32)
    gain = (1.0 + 0.05 * rng.standard_normal((256, 256))).astype(np.float32)
    found = detect_gain_orientation(frames_sum, gain)
    assert not found.confident


def test_gain_orientation_rejects_a_gain_of_another_size() -> None:
    with pytest.raises(ValueError, match="gain_as_stored"):
        detect_gain_orientation(np.ones((64, 64)), np.ones((64, 32)))


def test_planted_hot_and_dead_pixels_are_found_and_replaced(rng: np.random.Generator) -> None:
    n, shape = 20, (128, 160)
    frames = rng.poisson(1.0, size=(n, *shape)).astype(np.uint16)
    hot_at = rng.choice(shape[0] * shape[1], size=12, replace=False)
    dead_at = rng.choice(np.setdiff1d(np.arange(shape[0] * shape[1]), hot_at), 9, replace=False)
    frames.reshape(n, -1)[:, hot_at] = rng.poisson(20.0, size=(n, hot_at.size))
    frames.reshape(n, -1)[:, dead_at] = 0
    found = find_defects(frames.sum(axis=0).astype(np.float32), n_frames=n)
    assert set(found.pixels[: found.n_hot + found.n_dead].tolist()) == set(hot_at) | set(dead_at)
    assert (found.n_hot, found.n_dead) == (12, 9)
    frame = corrected_frame(frames[0], gain=None, defects=found)
    assert frame.dtype == np.float32
    assert frame.reshape(-1)[hot_at].max() < 10  # counts like their neighbours'
    assert not np.isin(found.sources, found.pixels).any()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(5)


@pytest.mark.parametrize("shape", [(64, 48), (9, 9), (5, 7)])
def test_the_high_pass_box_mean_is_scipys_uniform_filter(shape: tuple[int, int]) -> None:
    """The gain-orientation high pass's box mean (written with running sums so that a
    ``cryolive motioncorr`` call does not import scipy) against scipy.ndimage's, mirrored
    edges included, also where the box is wider than the image."""
    from scipy import ndimage

    from cryolive.engines.motion._gain import _box_mean

    image = np.random.default_rng(2).standard_normal(shape).astype(np.float32) * 100 + 3
    expected = ndimage.uniform_filter(image.astype(np.float64), size=9, mode="reflect")
    np.testing.assert_allclose(_box_mean(image, 9), expected, rtol=0, atol=1e-9)
