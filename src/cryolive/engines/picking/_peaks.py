"""Background statistics of a score map, and peaks separated by a minimum distance."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy import fft as sfft
from scipy import ndimage, special


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


FALSE_SHARE_FDR = 0.02  # expected noise maxima among the picks above the automatic threshold
MIN_FALSE = 0.5  # ... but never fewer than this many expected (a micrograph without particles)
# with a noise count (``null``): issue 23's precision goal itself, and one expected noise
# maximum; the count is an upper bound on a micrograph (its background SD includes the
# particles' share, so its noise maxima score lower than pure noise's): measured 0 picks on 6
# particle-free micrographs, precision 0.96-1.00 on 25 with particles (BENCHMARKS.md)
NULL_FALSE_SHARE = 0.05
NULL_MIN_FALSE = 1.0
RING_RATIO = 2.5  # a peak this many times lower than a pick near it is that pick's ring
THRESHOLD_LIMITS = (2.5, 6.0)  # the automatic threshold stays within these SDs
_CHI2_1_MEDIAN = 0.454936  # median of a chi-squared variable with one degree of freedom


def roughness(z: NDArray[np.float32], usable: NDArray[np.bool_]) -> float:
    """√det Λ of ``z``'s noise, Λ the covariance of its gradient (px⁻²), robustly estimated.

    A unit-variance Gaussian field's gradient components are Gaussian with variances Λxx,
    Λyy; their squares' medians are Λ x 0.4549 (chi-squared, one degree of freedom), so the
    few pixels on particles' steep flanks do not inflate it.
    """
    # spectral derivatives: finite differences would lose ~15 % of a smooth map's slope
    spectrum = sfft.rfft2(z.astype(np.float32) - np.float32(np.median(z)), workers=-1)
    ky = (2j * np.pi * np.fft.fftfreq(z.shape[0])).astype(np.complex64)[:, None]
    kx = (2j * np.pi * np.fft.rfftfreq(z.shape[1])).astype(np.complex64)[None, :]
    gy = sfft.irfft2(spectrum * ky, s=z.shape, workers=-1)
    gx = sfft.irfft2(spectrum * kx, s=z.shape, workers=-1)
    keep = usable if usable.any() else np.ones(z.shape, dtype=bool)
    step = max(1, int(np.count_nonzero(keep)) // 200_000)
    lyy = float(np.median(gy[keep][::step] ** 2)) / _CHI2_1_MEDIAN
    lxx = float(np.median(gx[keep][::step] ** 2)) / _CHI2_1_MEDIAN
    return math.sqrt(max(lyy * lxx, 0.0))


def expected_noise_maxima(
    u: NDArray[np.float64], *, area_px: float, roughness_px: float
) -> NDArray[np.float64]:
    """Expected number of a Gaussian noise field's local maxima above ``u`` (z units).

    The Euler characteristic of the excursion set above a high ``u`` counts its maxima
    (Adler; Worsley et al. 1996, the Gaussian kinematic formula): in 2D its expectation is
    area x √det Λ / (2π)^{3/2} x u exp(-u²/2) + P(Z > u).
    """
    u = np.asarray(u, dtype=np.float64)
    density = roughness_px / (2.0 * np.pi) ** 1.5 * u * np.exp(-0.5 * u * u)
    return np.asarray(area_px * density + 0.5 * special.erfc(u / math.sqrt(2.0)))


def fdr_threshold(
    heights: NDArray[np.floating],
    *,
    area_px: float,
    roughness_px: float,
    false_share: float = FALSE_SHARE_FDR,
    min_false: float = MIN_FALSE,
    null: tuple[NDArray[np.floating], float] | None = None,
) -> float:
    """The lowest height at which the noise maxima expected above it (see
    :func:`expected_noise_maxima`) are at most ``false_share`` of the maxima seen above it
    (``heights``, this micrograph's local maxima in z units), and at least ``min_false``.

    Noise alone would give as many maxima above ``u`` as the formula expects; particles add
    to the maxima seen, so where many stand above the noise the threshold falls (weak
    particles kept), and where few do it rises until at most ``min_false`` noise maxima are
    expected (a micrograph without particles gives about none). The expected share of
    false picks is held at ``false_share`` whatever the noise's texture: the roughness of
    the score map, measured on this micrograph, sets how many noise maxima an area holds.
    Held within ``THRESHOLD_LIMITS``.

    ``null`` (heights, area in px) replaces the formula with a count: the local maxima of
    the same score computed on pure noise over that area, scaled to ``area_px``. For a score
    the formula does not describe (the largest of several filters' responses).
    """
    h = np.sort(np.asarray(heights, dtype=np.float64)[np.isfinite(heights)])
    low, high = THRESHOLD_LIMITS
    grid = np.arange(low, high + 1e-9, 0.02)
    if null is None:
        expected = expected_noise_maxima(grid, area_px=area_px, roughness_px=roughness_px)
    else:
        noise = np.sort(np.asarray(null[0], dtype=np.float64))
        above = noise.size - np.searchsorted(noise, grid, side="right")
        expected = np.asarray(above * (area_px / null[1]), dtype=np.float64)
    seen = h.size - np.searchsorted(h, grid, side="right")
    ok = expected <= np.maximum(false_share * seen, min_false)
    return float(grid[np.argmax(ok)]) if ok.any() else high


def drop_rings(
    y: NDArray[np.intp],
    x: NDArray[np.intp],
    heights: NDArray[np.float32],
    *,
    reach_px: float,
    ratio: float = RING_RATIO,
) -> NDArray[np.bool_]:
    """Which peaks (``y``, ``x``, highest first) to keep: not those within ``reach_px`` of a
    kept peak at least ``ratio`` times higher.

    A strong particle seen through the CTF is ringed by fringes of alternating contrast; a
    filter of a particle's size answers to a dark fringe's arc at a fraction of the
    particle's own score, where the noise model (which knows nothing of particles) says it
    is not noise. Neighbouring particles of one species score alike (measured: a true pick
    at most 2.1 times below a neighbour within 1.5 diameters, on 1,400 particles).
    """
    keep = np.ones(y.size, dtype=bool)
    reach2 = reach_px * reach_px
    for i in range(1, y.size):
        near = (y[:i] - y[i]) ** 2 + (x[:i] - x[i]) ** 2 < reach2
        if np.any(near & keep[:i] & (heights[:i] >= ratio * heights[i])):
            keep[i] = False
    return keep


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
