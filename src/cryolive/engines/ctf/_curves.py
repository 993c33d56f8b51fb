"""Astigmatism-corrected 1D profile, the local agreement of fit and data, and the fit
resolution."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from cryolive.engines.ctf._background import basis, fit_linear_coefficients
from cryolive.engines.ctf._physics import Aberration
from cryolive.engines.ctf._spectrum import Grid

CC_THRESHOLD = 0.5
MIN_HALF_WINDOW = 5
MIN_PERIOD_PX = 2.0


def equiphase_radius(ab: Aberration, p: NDArray[np.float64]) -> NDArray[np.float64]:
    """Radius (Å⁻¹) at which the mean defocus gives each point's χ; NaN where none does."""
    c = ab.half_pi_cs_lambda3
    b = ab.pi_lambda * p[0]
    target = ab.k2 * (ab.pi_lambda * (p[0] + p[1] * ab.cos2 + p[2] * ab.sin2) - c * ab.k2)
    if c == 0:
        u = target / b
    else:
        disc = b * b - 4 * c * target
        with np.errstate(invalid="ignore"):
            u = (b - np.sqrt(disc)) / (2 * c)
    with np.errstate(invalid="ignore"):
        return np.where(u >= 0, np.sqrt(np.abs(u)), np.nan)


def local_cc(
    data: NDArray[np.float64], fit: NDArray[np.float64], half: NDArray[np.intp]
) -> NDArray[np.float64]:
    """Pearson correlation of ``data`` and ``fit`` in a window of ±``half`` around each bin."""
    out = np.zeros(data.size)
    for i in range(data.size):
        lo, hi = max(0, i - half[i]), min(data.size, i + half[i] + 1)
        d = data[lo:hi] - data[lo:hi].mean()
        f = fit[lo:hi] - fit[lo:hi].mean()
        norm = math.sqrt(float(d @ d) * float(f @ f))
        out[i] = float(d @ f) / norm if norm > 0 else 0.0
    return out


def profile_and_resolution(
    spectrum: NDArray[np.float64],
    grid: Grid,
    ab: Aberration,
    keep: NDArray[np.bool_],
    p: NDArray[np.float64],
    r_lo: float,
) -> tuple[
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.float64],
    float,
    tuple[NDArray[np.float64], NDArray[np.float64]],
]:
    """Equiphase profile from ``r_lo`` to Nyquist, its fit, local CC and the fit resolution.

    Returns (frequency Å⁻¹, data - background, envelope * sin²χ, local cc, fit resolution Å,
    (background, envelope) as functions of radius in pixels, sampled at every integer radius).
    """
    scale = grid.box_px * grid.pixel_size_a
    r_eq = equiphase_radius(ab, p) * scale
    ok = np.isfinite(r_eq)
    bins = np.rint(r_eq[ok]).astype(np.intp)
    values = spectrum[keep][ok]
    counts = np.bincount(bins)
    sums = np.bincount(bins, weights=values)
    r_hi = grid.box_px // 2 - 1
    radii = np.arange(math.ceil(r_lo), min(r_hi, counts.size - 1) + 1)
    radii = radii[counts[radii] > 0]
    profile = sums[radii] / counts[radii]
    k = radii / scale
    chi = k * k * (ab.pi_lambda * p[0] - ab.half_pi_cs_lambda3 * k * k) + p[3] + ab.amplitude_phase
    ctf2 = np.sin(chi) ** 2
    vb, ve = basis(
        radii.astype(np.float64),
        float(radii[0]),
        float(radii[-1]),
        background_degree=6,
        envelope_degree=4,
    )
    _, background, envelope, coef = fit_linear_coefficients(profile, ctf2, vb, ve)
    data = profile - background
    fit = envelope * ctf2
    slope = np.abs(2 * ab.pi_lambda * p[0] * k - 4 * ab.half_pi_cs_lambda3 * k**3)
    period_px = np.where(slope > 0, math.pi / np.maximum(slope, 1e-300) * scale, np.inf)
    half = np.maximum(MIN_HALF_WINDOW, np.ceil(np.minimum(period_px, radii.size))).astype(np.intp)
    cc = local_cc(data, fit, half)
    resolved = (period_px >= MIN_PERIOD_PX) & (cc >= CC_THRESHOLD)
    start = int(np.argmax(resolved)) if resolved.any() else 0
    failing = np.flatnonzero(~resolved[start:])
    last = start + int(failing[0]) - 1 if failing.size else radii.size - 1
    last = max(last, 0)
    fit_resolution_a = float(scale / radii[last])
    all_r = np.arange(grid.box_px // 2 + 1, dtype=np.float64)
    lo, hi = float(radii[0]), float(radii[-1])
    vb_all, ve_all = basis(np.clip(all_r, lo, hi), lo, hi, background_degree=6, envelope_degree=4)
    nb = vb_all.shape[1]
    return k, data, fit, cc, fit_resolution_a, (vb_all @ coef[:nb], ve_all @ coef[nb:])
