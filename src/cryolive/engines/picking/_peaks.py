"""Background statistics of a score map, and peaks separated by a minimum distance."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage, special

EXPECTED_FALSE_PEAKS = 1.0  # noise maxima expected above the automatic threshold, at most
FALSE_SHARE = 0.02  # ... and at most this share of the peaks above it (but never under 0.25)
THRESHOLD_RANGE = (3.0, 5.0)  # the automatic threshold stays within these SDs
MIN_MAXIMA = 200  # fewer local maxima: too few to measure the noise's tail (1 in n)
FALLBACK_THRESHOLD = 5.0


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


def local_maxima(
    z: NDArray[np.float32], *, min_distance_px: float, border_px: int
) -> NDArray[np.bool_]:
    """Pixels that are the maximum of their square neighbourhood inscribed in the
    ``min_distance_px`` disc, away from the border."""
    # the square inscribed in the disc (separable, so fast); find_peaks' greedy pass then
    # enforces the full disc
    half = max(1, int(min_distance_px / np.sqrt(2.0)))
    local_max = ndimage.maximum_filter(z, size=2 * half + 1, mode="nearest")
    candidate = z >= local_max
    if border_px > 0:
        candidate[:border_px] = False
        candidate[-border_px:] = False
        candidate[:, :border_px] = False
        candidate[:, -border_px:] = False
    return np.asarray(candidate, dtype=bool)


def noise_threshold(
    heights: NDArray[np.floating], *, expected_false: float = EXPECTED_FALSE_PEAKS
) -> float:
    """A peak threshold from one micrograph's own local maxima (``heights``, z units).

    Most local maxima of a score map are noise; particles add an upper tail. The noise
    maxima's centre is the median and their spread the lower half's median absolute
    deviation (particles do not reach below the centre), iterated with the maxima above
    centre + 3 spreads set aside, so that even a micrograph whose maxima are 40 % particles
    gives the noise's figures. The threshold is where a Gaussian of that centre and spread
    leaves ``expected_false`` of the noise maxima above it: centre + spread ·
    Φ⁻¹(1 - expected_false / n_noise). It rises with the number of maxima (a larger
    micrograph has more noise peaks to exclude) and with their spread, and falls where the
    noise is quiet, so weak particles that a fixed 5 SD would miss are kept. Where few peaks
    stand above it, the false peaks allowed fall to ``FALSE_SHARE`` of them (at least 0.25),
    so that a sparse micrograph keeps its precision. The result is held within
    ``THRESHOLD_RANGE`` (3-5 SD): never stricter than the fixed 5 SD of before, which a
    micrograph whose maxima are mostly strong particles (no noise maxima left to measure)
    falls back to. Fewer than ``MIN_MAXIMA`` maxima give ``FALLBACK_THRESHOLD``.
    """
    h = np.asarray(heights, dtype=np.float64)
    h = h[np.isfinite(h)]
    if h.size < MIN_MAXIMA:
        return FALLBACK_THRESHOLD
    keep = np.ones(h.size, dtype=bool)
    centre, spread = float(np.median(h)), 1.0
    for _ in range(20):
        centre = float(np.median(h[keep]))
        below = h[keep & (h < centre)]
        spread = 1.4826 * float(np.median(centre - below)) if below.size else 0.0
        if not spread > 0:
            return FALLBACK_THRESHOLD
        update = h < centre + 3.0 * spread
        if np.array_equal(update, keep):
            break
        keep = update
    n_noise = int(keep.sum())
    tail = spread
    threshold = centre + tail * _upper_quantile(expected_false / n_noise)
    # a micrograph with few particles: fewer false peaks allowed, so precision holds
    above = int(np.count_nonzero(h > threshold))
    allowed = min(expected_false, max(0.25, FALSE_SHARE * above))
    threshold = centre + tail * _upper_quantile(allowed / n_noise)
    low, high = THRESHOLD_RANGE
    return float(min(max(threshold, low), high))


def _upper_quantile(tail: float) -> float:
    """z with P(Z > z) = ``tail`` for a standard normal Z."""
    return math.sqrt(2.0) * float(special.erfcinv(2.0 * min(max(tail, 1e-12), 0.5)))


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
    candidate = local_maxima(z, min_distance_px=min_distance_px, border_px=border_px)
    candidate &= z > threshold
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
