"""Fourier ring correlation between two images and the resolution where it drops."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def ring_index(box_px: int) -> NDArray[np.int64]:
    """Ring number (rounded radius in Fourier pixels) of each rfft2 coefficient of a bxb image."""
    ky = np.fft.fftfreq(box_px) * box_px
    kx = np.fft.rfftfreq(box_px) * box_px
    rings: NDArray[np.int64] = np.rint(np.hypot(ky[:, None], kx[None, :])).astype(np.int64)
    return rings


def frc(a: NDArray[np.floating], b: NDArray[np.floating]) -> NDArray[np.float64]:
    """FRC of two square images of the same size, ring 0 to b/2 (ring r is r/(b·pixel) Å⁻¹).

    Works on stacks too: (..., b, b) pairs give (..., b/2 + 1) curves.
    """
    if a.shape != b.shape or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"frc: need two square images of one shape, got {a.shape}, {b.shape}")
    box = a.shape[-1]
    fa = np.fft.rfft2(a)
    fb = np.fft.rfft2(b)
    rings = ring_index(box).ravel()
    n_rings = box // 2 + 1
    keep = rings < n_rings
    idx = rings[keep]

    def ring_sum(values: NDArray[np.float64]) -> NDArray[np.float64]:
        flat = values.reshape((*values.shape[:-2], -1))[..., keep]
        out = np.zeros((*flat.shape[:-1], n_rings))
        for pos in np.ndindex(flat.shape[:-1]):
            out[pos] = np.bincount(idx, weights=flat[pos], minlength=n_rings)
        return out

    cross = ring_sum(np.real(fa * np.conj(fb)))
    power = ring_sum(np.abs(fa) ** 2) * ring_sum(np.abs(fb) ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        curve = np.where(power > 0, cross / np.sqrt(power), 0.0)
    return np.asarray(curve, dtype=np.float64)


def resolution_at(curve: NDArray[np.floating], *, pixel_size_a: float, threshold: float) -> float:
    """Resolution (Å) of the first ring after ring 1 where ``curve`` falls below ``threshold``.

    The crossing is interpolated between rings; a curve that never falls gives Nyquist
    (2 x pixel size); one that is already below at ring 1 gives ``inf``.
    """
    values = np.asarray(curve, dtype=np.float64)
    n = values.shape[-1]
    box = 2 * (n - 1)
    if n < 3 or values[1] < threshold:
        return float("inf")
    for ring in range(2, n):
        if values[ring] < threshold:
            above, below = values[ring - 1], values[ring]
            frac = (above - threshold) / (above - below) if above != below else 0.0
            where = ring - 1 + frac
            return float(box * pixel_size_a / where)
    return 2.0 * pixel_size_a
