"""FRC and the resolution where it crosses a threshold, on images with a planted cut-off."""

from __future__ import annotations

import numpy as np
import pytest

from cryolive.engines.class2d._frc import frc, resolution_at, ring_index


def _band(image: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Keep the Fourier rings r with lo <= r < hi."""
    rings = ring_index(image.shape[-1])
    spectrum = np.fft.rfft2(image) * ((rings >= lo) & (rings < hi))
    return np.fft.irfft2(spectrum, s=image.shape)


@pytest.mark.parametrize("cutoff", [10, 24, 40])
def test_shared_signal_up_to_a_ring_gives_that_resolution(cutoff: int) -> None:
    rng = np.random.default_rng(cutoff)
    box, pixel_a = 128, 1.7
    shared = _band(rng.standard_normal((box, box)), 0, cutoff)
    a = shared + _band(rng.standard_normal((box, box)), cutoff, box)
    b = shared + _band(rng.standard_normal((box, box)), cutoff, box)
    curve = frc(a, b)
    assert curve.shape == (box // 2 + 1,)
    assert np.all(curve[1:cutoff] > 0.99)
    assert np.all(np.abs(curve[cutoff + 1 :]) < 0.35)
    # the crossing lies between the last shared ring and the first independent one
    res = resolution_at(curve, pixel_size_a=pixel_a, threshold=0.5)
    assert box * pixel_a / cutoff <= res <= box * pixel_a / (cutoff - 1)


def test_identical_images_reach_nyquist_and_independent_ones_nothing() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((64, 64))
    assert resolution_at(frc(a, 2 * a + 1), pixel_size_a=2.0, threshold=0.5) == 4.0
    assert resolution_at(frc(a, -a), pixel_size_a=2.0, threshold=0.5) == float("inf")


def test_stacks_give_one_curve_per_pair() -> None:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 2, 32, 32))
    b = a + rng.standard_normal((3, 2, 32, 32))
    curves = frc(a, b)
    assert curves.shape == (3, 2, 17)
    assert np.allclose(curves[1, 0], frc(a[1, 0], b[1, 0]))
    assert np.allclose(frc(a, a)[..., 1:], 1.0)


def test_frc_refuses_mismatched_or_non_square_images() -> None:
    with pytest.raises(ValueError, match="square"):
        frc(np.zeros((8, 8)), np.zeros((8, 10)))
    with pytest.raises(ValueError, match="square"):
        frc(np.zeros((8, 10)), np.zeros((8, 10)))
