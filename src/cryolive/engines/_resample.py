"""Fourier resampling, shared by the picking, extraction and 2D engines."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from cryolive.engines import fft as pfft


def fourier_resize(image: NDArray[np.float32], shape: tuple[int, int]) -> NDArray[np.float32]:
    """Resample ``image`` (y, x) to ``shape`` by cropping or zero-padding its spectrum.

    The mean value is kept. Cropping is an ideal low-pass at the new Nyquist frequency, so
    nothing aliases.
    """
    ny, nx = image.shape
    wy, wx = shape
    if (wy, wx) == (ny, nx):
        return image.astype(np.float32, copy=True)
    spectrum = pfft.rfft2(image, workers=-1)
    out = np.zeros((wy, wx // 2 + 1), dtype=spectrum.dtype)
    hy = min(ny, wy) // 2
    hx = min(nx // 2, wx // 2) + 1
    out[:hy, :hx] = spectrum[:hy, :hx]
    out[wy - hy :, :hx] = spectrum[ny - hy :, :hx]
    resized = pfft.irfft2(out, s=(wy, wx), workers=-1, overwrite_x=True)
    return np.asarray(resized * np.float32(wy * wx / (ny * nx)), dtype=np.float32)
