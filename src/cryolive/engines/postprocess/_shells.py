"""Fourier shells of rfftn volumes."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def radius_grid(box: int) -> NDArray[np.float64]:
    """Each rfftn point's radius in frequency indices, (b, b, b//2+1)."""
    kz = np.fft.fftfreq(box, d=1.0 / box)[:, None, None]
    ky = np.fft.fftfreq(box, d=1.0 / box)[None, :, None]
    kx = np.arange(box // 2 + 1, dtype=np.float64)[None, None, :]
    return np.asarray(np.sqrt(kz**2 + ky**2 + kx**2), dtype=np.float64)


def shell_grid(box: int) -> NDArray[np.int64]:
    """Each rfftn point's shell (rounded radius), (b, b, b//2+1)."""
    return np.rint(radius_grid(box)).astype(np.int64)


def shell_mean(values: NDArray[np.floating], shells: NDArray[np.int64]) -> NDArray[np.float64]:
    """Mean of ``values`` per shell 0 … b//2 (the corner beyond Nyquist left out)."""
    n = shells.shape[0] // 2 + 1
    keep = shells < n
    total = np.bincount(shells[keep], np.asarray(values, dtype=np.float64)[keep], minlength=n)
    count = np.bincount(shells[keep], minlength=n)
    return np.asarray(total / np.maximum(count, 1), dtype=np.float64)
