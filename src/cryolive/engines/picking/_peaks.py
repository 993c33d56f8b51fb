"""Background statistics of a score map, and peaks separated by a minimum distance."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage


def background_z(score: NDArray[np.float32], usable: NDArray[np.bool_]) -> NDArray[np.float32]:
    """``score`` in standard deviations of its background, from the usable pixels.

    Median and MAD (scaled to a standard deviation) are iterated with 3-sigma clipping, so
    particles (the upper tail) and a few bad pixels do not widen the background.
    """
    values = score[usable] if usable.any() else score.ravel()
    values = values[:: max(1, values.size // 100_000)]  # a sample is plenty for a median
    keep = np.ones(values.shape, dtype=bool)
    centre, spread = 0.0, 1.0
    for _ in range(3):
        centre = float(np.median(values[keep]))
        spread = 1.4826 * float(np.median(np.abs(values[keep] - centre)))
        if not spread > 0:
            spread = float(np.std(values)) or 1.0
            break
        keep = np.abs(values - centre) < 3.0 * spread
    return np.asarray((score - np.float32(centre)) / np.float32(spread), dtype=np.float32)


def find_peaks(
    z: NDArray[np.float32],
    *,
    min_distance_px: float,
    threshold: float,
    border_px: int,
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Local maxima of ``z`` above ``threshold``, none within ``min_distance_px`` of a higher one.

    Candidates are the maxima of a square neighbourhood inside that distance; a greedy pass
    in order of height then removes any within ``min_distance_px`` of one kept.
    Peaks closer than ``border_px`` to an edge are dropped.

    Returns
    -------
    y, x : (n,) int
        Peak positions, highest first.
    """
    # the square inscribed in the disc (separable, so fast); the greedy pass below then
    # enforces the full disc
    half = max(1, int(min_distance_px / np.sqrt(2.0)))
    local_max = ndimage.maximum_filter(z, size=2 * half + 1, mode="nearest")
    candidate = (z >= local_max) & (z > threshold)
    if border_px > 0:
        candidate[:border_px] = False
        candidate[-border_px:] = False
        candidate[:, :border_px] = False
        candidate[:, -border_px:] = False
    py, px = np.nonzero(candidate)
    order = np.argsort(-z[py, px], kind="stable")
    py, px = py[order], px[order]
    kept: list[int] = []
    limit = min_distance_px * min_distance_px
    for i in range(py.size):
        if kept:
            k = np.asarray(kept)
            if np.min((py[k] - py[i]) ** 2 + (px[k] - px[i]) ** 2) < limit:
                continue
        kept.append(i)
    index = np.asarray(kept, dtype=np.intp)
    return py[index], px[index]
