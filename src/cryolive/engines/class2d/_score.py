"""A score for each class average: does it hold good particles?

Good particles give a class whose density sits inside the particle's diameter, falls off
towards the mask's rim and agrees between half-sets to a useful resolution. Ice, carbon edges
and empty boxes give classes with density reaching the rim (a large blob, a straight edge) or
none at all, and half-sets that agree only at low resolution. Two features, each mapped to
[0, 1] by a logistic curve, multiply to the score:

- compactness: mean squared density in the inner disc (60% of the particle radius) over that of
  inner disc plus the rim (85-100% of the radius); 0.5 for density spread evenly, near 1 for a
  compact particle (0.97-0.99 for the simulated particles, 0.71-0.77 for their junk); the
  logistic midpoint is 0.85;
- resolution: FRC 0.143 between half-sets, midpoint 25 Å (classes of good particles reach
  6-15 Å; junk rarely passes 30 Å).

A class is selected at a score of 0.5 or more *and* when it holds at least ``min_particles``
particles (20 by default in :class:`Class2DSettings`): a class of a handful of particles has no
average worth keeping, however its image scores. The same rule serves cryolive's classes and
RELION's (whose averages are masked at the same diameter).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from cryolive.engines.class2d._geometry import radius_grid

COMPACT_MIDPOINT = 0.85
COMPACT_WIDTH = 0.04
RESOLUTION_MIDPOINT_A = 25.0
RESOLUTION_WIDTH_A = 3.0
SELECT_AT = 0.5


def _logistic(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(x, -50, 50))), dtype=np.float64)


def compactness(
    averages: NDArray[np.floating], *, pixel_size_a: float, particle_diameter_a: float
) -> NDArray[np.float64]:
    """Inner-disc share of the mean squared density of each average (k,)."""
    b = averages.shape[-1]
    radius = min(0.5 * particle_diameter_a / pixel_size_a, 0.5 * b - 1)
    r = radius_grid(b)
    inner = r <= 0.6 * radius
    rim = (r >= 0.85 * radius) & (r <= radius)
    power = np.asarray(averages, dtype=np.float64) ** 2
    e_in = power[:, inner].mean(axis=1)
    e_rim = power[:, rim].mean(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(e_in + e_rim > 0, e_in / (e_in + e_rim), 0.5)
    return np.asarray(share, dtype=np.float64)


def score_classes(
    averages: NDArray[np.floating],
    *,
    pixel_size_a: float,
    particle_diameter_a: float,
    resolution_a: NDArray[np.floating],
    particles: NDArray[np.integer] | None = None,
    min_particles: int = 0,
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Score (k,) in [0, 1] and selection (k,) of class averages (k, b, b).

    A class is selected when its score is at least 0.5 and, given ``particles`` (k,), it
    holds at least ``min_particles`` of them.
    """
    if averages.ndim != 3:
        raise ValueError(f"averages: must be (k, b, b), got {averages.shape}")
    if np.shape(resolution_a) != (averages.shape[0],):
        raise ValueError("resolution_a: must hold one value per class")
    if particles is not None and np.shape(particles) != (averages.shape[0],):
        raise ValueError("particles: must hold one count per class")
    share = compactness(
        averages, pixel_size_a=pixel_size_a, particle_diameter_a=particle_diameter_a
    )
    res = np.where(np.isfinite(resolution_a), resolution_a, 1e6).astype(np.float64)
    score = _logistic((share - COMPACT_MIDPOINT) / COMPACT_WIDTH) * _logistic(
        (RESOLUTION_MIDPOINT_A - res) / RESOLUTION_WIDTH_A
    )
    selected = score >= SELECT_AT
    if particles is not None:
        selected &= np.asarray(particles) >= min_particles
    return score, selected


def selection_report(
    score: NDArray[np.float64],
    selected: NDArray[np.bool_],
    particles: NDArray[np.integer],
    *,
    min_particles: int,
) -> str:
    """One line that says which classes were selected, by what rule and with what score."""
    rule = f"score >= {SELECT_AT:g} and >= {min_particles} particles"
    chosen = [
        f"{c + 1} (score {score[c]:.2f}, {int(particles[c])} particles)"
        for c in np.flatnonzero(selected)
    ]
    return f"selected {len(chosen)} of {len(score)} classes ({rule}): " + (
        ", ".join(chosen) if chosen else "none"
    )
