"""The rules of live 3D, pure: when a 3D run is due, which class is refined, and how evenly
a class's particles cover the view directions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from cryolive.params import Class3DParameters, Refine3DParameters
from cryolive.records import Class3DValues

_BANDS = 6  # view-direction bins: bands of equal area (cos tilt) ...
_SECTORS = 12  # ... times sectors of rot: 72 bins of equal area over the sphere


def run_due(selected: int, runs: Sequence[int], settings: Class3DParameters) -> bool:
    """Whether ``selected`` particles call for a new 3D run, after runs of ``runs`` particles:
    the first at ``first_particles``, then each time the count has grown ``growth``-fold
    since the last run."""
    if selected < settings.first_particles:
        return False
    return not runs or selected >= settings.growth * max(runs)


def angular_efficiency(angles_deg: NDArray[np.floating]) -> float | None:
    """How evenly particles cover the view directions, 0-1: 1 - 2 sd / mean of the particles
    per direction bin (72 bins of equal area), the sd without its counting noise (a
    uniform spread reads about 1 at any count, one view about 0). None with fewer than one
    particle per bin.

    ``angles_deg``: (n, 3) RELION rot, tilt, psi; the view direction is (rot, tilt).
    """
    a = np.asarray(angles_deg, dtype=np.float64).reshape(-1, 3)
    if len(a) < _BANDS * _SECTORS:
        return None
    band = np.clip(((1.0 - np.cos(np.radians(a[:, 1]))) / 2.0 * _BANDS).astype(int), 0, _BANDS - 1)
    sector = (np.floor((a[:, 0] % 360.0) / 360.0 * _SECTORS)).astype(int) % _SECTORS
    counts = np.bincount(band * _SECTORS + sector, minlength=_BANDS * _SECTORS).astype(float)
    mean = counts.mean()
    excess = max(counts.var() - mean, 0.0)  # the variance beyond Poisson noise
    return float(np.clip(1.0 - 2.0 * np.sqrt(excess) / mean, 0.0, 1.0))


def class_to_refine(classes: Sequence[Class3DValues], settings: Refine3DParameters) -> int | None:
    """The class to refine: the best resolved (then most populated) class with at least
    ``min_class_particles`` particles, if it reaches ``max_class_resolution_a`` and
    ``min_angular_efficiency`` (an unknown efficiency does not block); None otherwise."""
    if not settings.enabled:
        return None
    candidates = [
        c
        for c in classes
        if c.particles >= settings.min_class_particles and c.resolution_a is not None
    ]
    if not candidates:
        return None
    best = min(candidates, key=lambda c: (c.resolution_a, -c.particles))
    assert best.resolution_a is not None
    if best.resolution_a > settings.max_class_resolution_a:
        return None
    efficiency = best.angular_efficiency
    if efficiency is not None and efficiency < settings.min_angular_efficiency:
        return None
    return best.class_number
