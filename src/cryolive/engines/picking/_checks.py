"""Validation shared by the pickers."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from cryolive.engines._checks import check_micrograph


def check_inputs(
    micrograph: NDArray[np.generic],
    *,
    pixel_size_a: float,
    diameter_min_a: float,
    diameter_max_a: float,
) -> None:
    """Raise ValueError naming the parameter; UnusableMicrographError for NaN, blank, saturated."""
    if micrograph.ndim != 2:
        raise ValueError(f"micrograph: must be 2D (y, x), got shape {micrograph.shape}")
    if not pixel_size_a > 0:
        raise ValueError(f"pixel_size_a: must be positive, got {pixel_size_a}")
    if not diameter_min_a > 0:
        raise ValueError(f"diameter_min_a: must be positive, got {diameter_min_a}")
    if not diameter_max_a >= diameter_min_a:
        raise ValueError(
            f"diameter_max_a: must be at least diameter_min_a ({diameter_min_a}), "
            f"got {diameter_max_a}"
        )
    if diameter_min_a < 4 * pixel_size_a:
        raise ValueError(
            f"diameter_min_a: {diameter_min_a} Å is under 4 pixels of {pixel_size_a} Å"
        )
    if min(micrograph.shape) * pixel_size_a < 2 * diameter_max_a:
        raise ValueError(
            f"micrograph: {micrograph.shape} pixels of {pixel_size_a} Å cannot hold two "
            f"particles of diameter_max_a {diameter_max_a} Å across"
        )
    check_micrograph(micrograph)


def default_working_pixel_a(pixel_size_a: float, diameter_min_a: float) -> float:
    """Working pixel size (Å): ~14 pixels across the smallest particle, 3-8 Å, never finer
    than the micrograph's."""
    return max(pixel_size_a, min(8.0, max(3.0, diameter_min_a / 14.0)))
