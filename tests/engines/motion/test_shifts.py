"""Planted sub-pixel shifts of a synthetic image are recovered; float32 stays float32."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from cryolive.engines.motion import correct_motion, shift_and_sum


def _shifted_stack(
    shifts: np.ndarray, rng: np.random.Generator, counts: float | None
) -> np.ndarray:
    """Frames (Poisson, or noiseless for ``counts=None``) of one smooth random periodic
    image whose content moved by ``shifts`` (n, 2)."""
    size = 256
    base = ndimage.gaussian_filter(rng.standard_normal((size, size)), 2.0)
    base = 1.0 + 0.5 * base / base.std()
    spectrum = np.fft.rfft2(base)
    ky, kx = np.fft.fftfreq(size)[:, None], np.fft.rfftfreq(size)[None, :]
    frames = []
    for dy, dx in shifts:
        moved = np.fft.irfft2(spectrum * np.exp(-2j * np.pi * (ky * dy + kx * dx)), s=base.shape)
        frames.append(moved if counts is None else rng.poisson(np.clip(moved, 0, None) * counts))
    return np.asarray(frames, dtype=np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.uint16])
def test_planted_shifts_are_recovered_within_0_05_px(dtype: type) -> None:
    rng = np.random.default_rng(1)
    planted = np.array([[0.0, 0.0], [-2.4, 1.32], [-3.1, 2.05], [0.7, -4.6], [5.25, 3.5]])
    frames = _shifted_stack(planted, rng, counts=50.0).astype(dtype)
    result = correct_motion(frames, pixel_size_a=2.0, dose_per_frame_e_per_a2=1.0,
                            patches=None, defects=False, align_pixel_size_a=2.0)  # fmt: skip
    np.testing.assert_allclose(result.shifts_px, planted, atol=0.05)
    np.testing.assert_allclose(result.shifts_a, planted * 2.0, atol=0.1)
    assert result.plain_sum.dtype == np.float32


def test_sum_with_planted_shifts_matches_frame_0_and_tiles_leave_no_seams() -> None:
    """Noiseless frames of a high-contrast image (std 50 % of the mean): away from the frame
    edge, where content moved in from outside, the sum is 3 x frame 0 within 1.5 % of the
    mean (the rest is ringing of the tiles' periodic edges), seams included."""
    rng = np.random.default_rng(2)
    planted = np.array([[0.0, 0.0], [1.5, -0.75], [-2.25, 3.5]])
    frames = _shifted_stack(planted, rng, counts=None)
    plain, _ = shift_and_sum(frames, planted, pixel_size_a=1.0, dose_per_frame_e_per_a2=0.5,
                             tile_px=64)  # fmt: skip
    inner = (slice(32, -32), slice(32, -32))
    expected = 3 * frames[0][inner]
    error = np.abs(plain[inner] - expected) / expected.mean()
    assert error.max() < 0.015
    unshifted, _ = shift_and_sum(frames, np.zeros((3, 2)), pixel_size_a=1.0,
                                 dose_per_frame_e_per_a2=0.5, tile_px=64)  # fmt: skip
    assert (np.abs(unshifted[inner] - expected) / expected.mean()).max() > 0.2
