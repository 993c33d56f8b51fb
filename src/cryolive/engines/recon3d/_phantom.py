"""Test maps with known structure and real-space projection, independent of the Fourier code."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage


def phantom(
    box: int, rng: np.random.Generator, *, blobs: int = 40, radius_frac: float = 0.3
) -> NDArray[np.float32]:
    """An asymmetric, protein-like map: Gaussian blobs of several sizes inside a sphere.

    ``radius_frac`` of the box is the particle's radius; blobs have sigma 1 to 3 px (so the map has
    detail to Nyquist at small boxes). Positive density, zero mean outside is not enforced.
    """
    if box < 8:
        raise ValueError(f"box must be at least 8, got {box}")
    grid = np.indices((box, box, box), dtype=np.float32) - box // 2
    vol = np.zeros((box, box, box), dtype=np.float32)
    r_max = radius_frac * box
    for _ in range(blobs):
        while True:
            p = rng.uniform(-r_max, r_max, size=3)
            if np.linalg.norm(p) <= r_max:
                break
        sigma = rng.uniform(1.0, 3.0)
        amp = rng.uniform(0.5, 1.5)
        d2 = ((grid - p[:, None, None, None]) ** 2).sum(axis=0)
        vol += amp * np.exp(-d2 / (2 * sigma * sigma))
    return vol


def rotate_volume(
    volume: NDArray[np.floating], rotation: NDArray[np.floating]
) -> NDArray[np.float32]:
    """The map seen in the image frame of RELION matrix ``rotation``: out(x) = vol(Aᵀ x)."""
    box = volume.shape[0]
    c = box // 2
    grid = np.indices(volume.shape, dtype=np.float64).reshape(3, -1) - c  # z, y, x
    xyz = grid[::-1]
    src = np.asarray(rotation, dtype=np.float64).T @ xyz  # Aᵀ x
    coords = src[::-1] + c
    out = ndimage.map_coordinates(np.asarray(volume, np.float64), coords, order=3, mode="constant")
    return np.asarray(out.reshape(volume.shape), dtype=np.float32)


def project_real(
    volume: NDArray[np.floating], rotation: NDArray[np.floating]
) -> NDArray[np.float32]:
    """Projection along z of the map rotated by ``rotation`` (real space, cubic interpolation)."""
    return np.asarray(rotate_volume(volume, rotation).sum(axis=0), dtype=np.float32)
