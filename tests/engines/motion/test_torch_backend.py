"""The PyTorch backend passes the numpy path's accuracy test and makes the same sums.

Runs on a GPU when CUDA is there, else on torch's CPU device. PyTorch is an optional extra of
cryolive, and one of the dev tools: without it these tests skip on a developer's machine and
fail in CI (``CI`` set)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

from cryolive.engines.motion import shift_and_sum, torch_available

pytestmark = pytest.mark.skipif(
    not torch_available() and not os.environ.get("CI"), reason="PyTorch is not installed"
)


@pytest.fixture(scope="module")
def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def test_torch_backend_recovers_the_planted_drift(
    still_movie: Any, still_result: Any, run_motion: Any, device: str
) -> None:
    result = run_motion(still_movie, patches=(3, 3), device=device)
    error = result.shifts_px - still_movie.drift_px
    error -= error.mean(axis=0)
    assert np.sqrt(np.mean(np.sum(error**2, axis=1))) < 0.12
    # The same alignment as numpy's, to float32 rounding of the spectra.
    np.testing.assert_allclose(result.shifts_px, still_result.shifts_px, atol=0.02)


def test_torch_and_numpy_sums_agree(still_movie: Any, device: str) -> None:
    shifts = still_movie.drift_px
    settings = dict(pixel_size_a=1.0, dose_per_frame_e_per_a2=1.0, gain=still_movie.gain)
    frames = still_movie.frames[:8]
    plain_np, weighted_np = shift_and_sum(frames, shifts[:8], **settings)
    plain_t, weighted_t = shift_and_sum(frames, shifts[:8], device=device, **settings)
    inner = (slice(40, -40), slice(40, -40))  # the mirrored edges differ by one pixel
    scale = float(np.abs(plain_np).mean())
    assert np.abs(plain_t[inner] - plain_np[inner]).max() < 1e-3 * scale
    assert np.abs(weighted_t[inner] - weighted_np[inner]).max() < 1e-3 * scale
    assert plain_t.dtype == np.float32
    assert not np.array_equal(plain_t, plain_np), "the torch path must have run (other FFT)"
