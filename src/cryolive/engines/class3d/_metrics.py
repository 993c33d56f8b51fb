"""What ranks a 3D class: its resolution from two half-maps, and how evenly its particles'
viewing directions cover the sphere."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from cryolive.engines._search3d import half_set_resolution_a

__all__ = ["angular_efficiency", "half_set_resolution_a"]


def _direction_cells(count: int) -> NDArray[np.float64]:
    """``count`` Fibonacci directions on the upper hemisphere (z ≥ 0), (count, 3)."""
    k = np.arange(count) + 0.5
    z = 1.0 - k / count  # uniform in z on [0, 1]: equal areas
    phi = np.pi * (1 + 5**0.5) * k
    r = np.sqrt(1.0 - z * z)
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def angular_efficiency(rotations: NDArray[np.float64], *, cells: int = 40) -> float:
    """How evenly the viewing directions cover the sphere, 0 … 1.

    Each particle's direction (the volume axis seen along the beam, Aᵀ·ẑ, with d and -d the
    same view) falls in the nearest of ``cells`` equal-area cells of a hemisphere. The result
    is the fraction of cells holding at least a quarter of the mean count: 1 for uniform views,
    about 1/cells for a single view. As ISPyB's angularEfficiency, higher is better.
    """
    if len(rotations) == 0:
        return 0.0
    d = np.asarray(rotations)[:, 2, :]  # Aᵀ ẑ is A's third row
    d = np.where(d[:, 2:3] < 0, -d, d)
    centres = _direction_cells(cells)
    cell = np.argmax(d @ centres.T, axis=1)
    counts = np.bincount(cell, minlength=cells)
    return float(np.mean(counts >= 0.25 * len(rotations) / cells))
