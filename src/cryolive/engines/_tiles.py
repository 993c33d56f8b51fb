"""Averaged power spectra of a micrograph's tiles, shared by the CTF and ice engines."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from cryolive.engines import fft as _fft


def tile_power_spectra(image: NDArray[np.floating], box_px: int) -> NDArray[np.float32]:
    """Mean power spectra of the even and of the odd non-overlapping ``box_px`` tiles.

    The FFTs run on one thread, through :mod:`cryolive.engines.fft` (scipy's pocketfft
    without ``scipy.fft``'s import cost).

    Parameters
    ----------
    image : (y, x) float
        Micrograph; float32 stays float32.
    box_px : int
        Tile edge, pixels (even).

    Returns
    -------
    power : (2, box_px, box_px // 2 + 1) float32
        |FFT|² of the tiles, averaged over the even-numbered tiles and over the odd-numbered
        ones (two independent halves); unshifted rfft layout. The DC term (index [0, 0]) holds
        the tiles' mean and is not meaningful.
    """
    ny, nx = image.shape
    ty, tx = ny // box_px, nx // box_px
    if ty * tx < 2:
        raise ValueError(f"box_px: {box_px} leaves fewer than 2 tiles in {image.shape}")
    y0 = (ny - ty * box_px) // 2
    x0 = (nx - tx * box_px) // 2
    dtype = np.float32 if image.dtype == np.float32 else np.float64
    total = np.zeros((2, box_px, box_px // 2 + 1), dtype=np.float64)
    for row in range(ty):
        # One strip of tiles, as a (y, tile, x) view: no copy, transformed along y and x.
        # A tile's mean only sets its DC term, which the fit never uses, so it is not removed.
        top = y0 + row * box_px
        strip = np.asarray(image[top : top + box_px, x0 : x0 + tx * box_px], dtype=dtype)
        spectrum = _fft.rfftn(strip.reshape(box_px, tx, box_px), axes=(0, 2))
        power = spectrum.real**2 + spectrum.imag**2
        first = (row * tx) % 2
        total[first] += power[:, 0::2].sum(axis=1)
        total[1 - first] += power[:, 1::2].sum(axis=1)
    n = ty * tx
    counts = np.array([(n + 1) // 2, n // 2], dtype=np.float64)[:, None, None]
    return (total / counts).astype(np.float32)
