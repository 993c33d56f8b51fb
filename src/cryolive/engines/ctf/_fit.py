"""The two searches: 1D over mean defocus (and phase shift), then 2D refinement of astigmatism."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cryolive.engines.ctf._background import fit_linear
from cryolive.engines.ctf._physics import Aberration
from cryolive.engines.ctf._settings import CtfSearch

COARSE_STRIDE = 3
MEAN_OFFSETS_A = (-150.0, 0.0, 150.0)
HALF_ASTIGMATISM_A = (100.0, 250.0, 400.0)
ANGLE_STEP_DEG = 15.0


@dataclass(frozen=True)
class Band:
    """Points of the spectrum inside the fitted resolution band."""

    y: NDArray[np.float64]  # normalised power, (n,)
    ab: Aberration
    vb: NDArray[np.float64]  # background design, (n, nb)
    ve: NDArray[np.float64]  # envelope design, (n, ne)

    def every(self, stride: int) -> Band:
        s = slice(None, None, stride)
        ab = self.ab
        return Band(
            y=self.y[s],
            ab=Aberration(
                k2=ab.k2[s],
                cos2=ab.cos2[s],
                sin2=ab.sin2[s],
                pi_lambda=ab.pi_lambda,
                half_pi_cs_lambda3=ab.half_pi_cs_lambda3,
                amplitude_phase=ab.amplitude_phase,
            ),
            vb=self.vb[s],
            ve=self.ve[s],
        )


def _phases(search: CtfSearch) -> NDArray[np.float64]:
    if not search.fit_phase_shift:
        return np.array([math.radians(search.min_phase_shift_deg)])
    degrees = np.arange(
        search.min_phase_shift_deg,
        search.max_phase_shift_deg + 0.5 * search.phase_shift_step_deg,
        search.phase_shift_step_deg,
    )
    radians: NDArray[np.float64] = np.radians(degrees)
    return radians


def _rss_grid(
    band: Band, defocus: NDArray[np.float64], phases: NDArray[np.float64]
) -> NDArray[np.float64]:
    ab = band.ab
    k2 = ab.k2
    chi = (
        k2 * (ab.pi_lambda * defocus[:, None, None] - ab.half_pi_cs_lambda3 * k2)
        + phases[None, :, None]
        + ab.amplitude_phase
    )
    rss, _, _ = fit_linear(band.y, np.sin(chi) ** 2, band.vb, band.ve)
    out: NDArray[np.float64] = np.asarray(rss, dtype=np.float64)
    return out


def search_1d(band: Band, search: CtfSearch) -> tuple[float, float]:
    """Best (mean defocus Å, phase shift rad) on a rotational average ``band``."""
    step = search.defocus_step_a
    defocus = np.arange(search.min_defocus_a, search.max_defocus_a + 0.5 * step, step)
    phases = _phases(search)
    rss = _rss_grid(band, defocus, phases)
    if not np.isfinite(rss).any():
        return float(defocus[0]), float(phases[0])
    j, m = np.unravel_index(int(np.argmin(rss)), rss.shape)
    fine_def = defocus[j] + np.linspace(-step, step, 21)
    fine_def = fine_def[(fine_def >= search.min_defocus_a) & (fine_def <= search.max_defocus_a)]
    fine_ph = phases[m] + (
        np.radians(np.linspace(-0.5, 0.5, 11) * search.phase_shift_step_deg)
        if search.fit_phase_shift
        else np.zeros(1)
    )
    rss = _rss_grid(band, fine_def, fine_ph)
    jf, mf = np.unravel_index(int(np.argmin(rss)), rss.shape)
    return float(fine_def[jf]), float(fine_ph[mf])


def held_out_sigmas(band: Band, mean: float, phase: float) -> float:
    """Correlation of E*sin²χ(mean, phase) with an independent ``band``, in noise SDs.

    Only B and E (a few linear coefficients) are fitted to ``band``; defocus and phase come
    from the other half of the data, so without Thon rings this is about 0 +- 1.
    """
    ctf2 = np.sin(band.ab.chi(mean, 0.0, 0.0, phase)) ** 2
    rss, background, envelope = fit_linear(band.y, ctf2, band.vb, band.ve)
    if not np.isfinite(rss):
        return 0.0
    data = band.y - background
    model = envelope * ctf2
    data -= data.mean()
    model -= model.mean()
    norm = math.sqrt(float(data @ data) * float(model @ model))
    return float(data @ model) / norm * math.sqrt(band.y.size) if norm > 0 else 0.0


class _Objective:
    """Negative correlation of background-subtracted data with E·sin²χ, with range priors.

    χ is evaluated in float32 (its error, ~1e-5 rad, moves the correlation by ~1e-8, far
    below what 0.5 Å of defocus does); sums are taken in float64.
    """

    def __init__(
        self,
        band: Band,
        background: NDArray[np.float64],
        envelope: NDArray[np.float64],
        search: CtfSearch,
    ) -> None:
        data = band.y - background
        data -= data.mean()
        self.data = data.astype(np.float32)
        self.data_norm = float(np.sqrt(data @ data))
        self.envelope = envelope.astype(np.float32)
        ab = band.ab
        per_defocus = ab.pi_lambda * ab.k2
        self.per_mean = per_defocus.astype(np.float32)
        self.per_a1 = (per_defocus * ab.cos2).astype(np.float32)
        self.per_a2 = (per_defocus * ab.sin2).astype(np.float32)
        self.constant = (ab.amplitude_phase - ab.half_pi_cs_lambda3 * ab.k2**2).astype(np.float32)
        self.search = search

    def cc(self, p: NDArray[np.float64]) -> float:
        chi = self.per_mean * np.float32(p[0])
        chi += self.per_a1 * np.float32(p[1])
        chi += self.per_a2 * np.float32(p[2])
        chi += self.constant
        chi += np.float32(p[3])
        ring = np.sin(chi)
        model = self.envelope * ring * ring
        model -= np.float32(model.mean(dtype=np.float64))
        norm = math.sqrt(float(np.dot(model, model))) * self.data_norm
        return float(np.dot(self.data, model)) / norm if norm > 0 else 0.0

    def __call__(self, p: NDArray[np.float64]) -> float:
        s = self.search
        half = math.hypot(p[1], p[2])
        excess = 0.0 if s.fixed_astigmatism else max(0.0, 2 * half - s.max_astigmatism_a)
        excess += max(0.0, s.min_defocus_a - (p[0] - half))
        excess += max(0.0, (p[0] + half) - s.max_defocus_a)
        if s.fit_phase_shift and not s.phase_wraps:
            deg = math.degrees(p[3])
            excess += max(0.0, s.min_phase_shift_deg - deg, deg - s.max_phase_shift_deg)
        if excess > 0:
            return float(1.0 + excess)
        return -float(self.cc(p))


def _starts(mean: float, phase: float, search: CtfSearch) -> list[NDArray[np.float64]]:
    fixed = search.fixed_astigmatism
    if fixed is not None:
        return [np.array([mean + dm, fixed[0], fixed[1], phase]) for dm in MEAN_OFFSETS_A]
    starts = [np.array([mean + dm, 0.0, 0.0, phase]) for dm in MEAN_OFFSETS_A]
    for half in HALF_ASTIGMATISM_A:
        if 2 * half > search.max_astigmatism_a:
            continue
        for angle in np.arange(0.0, 180.0, ANGLE_STEP_DEG):
            two = math.radians(2 * angle)
            for dm in MEAN_OFFSETS_A:
                starts.append(
                    np.array([mean + dm, half * math.cos(two), half * math.sin(two), phase])
                )
    return starts


def _polish(objective: _Objective, start: NDArray[np.float64], scale: float) -> NDArray[np.float64]:
    steps = np.array([100.0, 100.0, 100.0, 0.2]) * scale
    if not objective.search.fit_phase_shift:
        steps[3] = 0.0
    if objective.search.fixed_astigmatism is not None:
        steps[1:3] = 0.0  # a known astigmatism is held
    free = steps > 0
    base = start.copy()

    def on_free(x: NDArray[np.float64]) -> float:
        p = base.copy()
        p[free] = x * steps[free]
        return objective(p)

    x0 = start[free] / steps[free]
    simplex = np.vstack([x0] + [x0 + np.eye(x0.size)[i] for i in range(x0.size)])
    found = _nelder_mead(on_free, simplex, xatol=0.005, fatol=1e-6, maxfev=2000)
    out = base.copy()
    out[free] = found * steps[free]
    return out


def _nelder_mead(
    f: Callable[[NDArray[np.float64]], float],
    simplex: NDArray[np.float64],
    *,
    xatol: float,
    fatol: float,
    maxfev: int,
) -> NDArray[np.float64]:
    """The lowest point of ``f`` found by the Nelder-Mead downhill simplex from ``simplex``
    (n + 1 rows of n), with the usual coefficients (reflection 1, expansion 2, contraction
    and shrink 1/2). Stops when every vertex is within ``xatol`` of the best (each coordinate)
    and every value within ``fatol`` of its value, or after ``maxfev`` evaluations.

    Written here rather than taken from scipy.optimize, whose import alone cost a one-micrograph
    ``cryolive ctf`` call more than this whole polish (docs/architecture.md)."""
    points = np.array(simplex, dtype=np.float64)
    values = np.array([f(p) for p in points])
    evaluations = len(points)

    def trial(x: NDArray[np.float64]) -> float:
        nonlocal evaluations
        evaluations += 1
        return f(x)

    while evaluations < maxfev:
        order = np.argsort(values, kind="stable")
        points, values = points[order], values[order]
        if (
            np.max(np.abs(points[1:] - points[0])) <= xatol
            and np.max(np.abs(values[1:] - values[0])) <= fatol
        ):
            break
        centroid = points[:-1].mean(axis=0)
        worst = points[-1]
        reflected = 2.0 * centroid - worst
        f_reflected = trial(reflected)
        if f_reflected < values[0]:
            expanded = 3.0 * centroid - 2.0 * worst
            f_expanded = trial(expanded)
            if f_expanded < f_reflected:
                points[-1], values[-1] = expanded, f_expanded
            else:
                points[-1], values[-1] = reflected, f_reflected
            continue
        if f_reflected < values[-2]:
            points[-1], values[-1] = reflected, f_reflected
            continue
        if f_reflected < values[-1]:  # contract on the reflected side
            contracted = 1.5 * centroid - 0.5 * worst
            f_contracted = trial(contracted)
            accept = f_contracted <= f_reflected
        else:  # contract on the worst vertex's side
            contracted = 0.5 * centroid + 0.5 * worst
            f_contracted = trial(contracted)
            accept = f_contracted < values[-1]
        if accept:
            points[-1], values[-1] = contracted, f_contracted
            continue
        points[1:] = points[0] + 0.5 * (points[1:] - points[0])  # shrink towards the best
        for i in range(1, len(points)):
            values[i] = trial(points[i])
    return np.asarray(points[int(np.argmin(values))])


def refine_2d(
    band: Band, mean: float, phase: float, search: CtfSearch
) -> tuple[NDArray[np.float64], float]:
    """Refine (mean defocus Å, a1 Å, a2 Å, phase rad) on the 2D ``band``; returns it and its CC."""
    a1, a2 = search.fixed_astigmatism or (0.0, 0.0)
    zero = np.array([mean, a1, a2, phase])
    ctf2 = np.sin(band.ab.chi(mean, 0.0, 0.0, phase)) ** 2
    _, background, envelope = fit_linear(band.y, ctf2, band.vb, band.ve)
    coarse_band = band.every(COARSE_STRIDE)
    coarse = _Objective(coarse_band, background[::COARSE_STRIDE], envelope[::COARSE_STRIDE], search)
    ranked = sorted(_starts(mean, phase, search), key=coarse)
    objective = _Objective(band, background, envelope, search)
    best = zero
    for start in ranked[:2]:
        candidate = _polish(objective, start, 1.0)
        if objective(candidate) < objective(best):
            best = candidate
    ctf2 = np.sin(band.ab.chi(best[0], best[1], best[2], best[3])) ** 2
    _, background, envelope = fit_linear(band.y, ctf2, band.vb, band.ve)
    objective = _Objective(band, background, envelope, search)
    best = _polish(objective, best, 0.3)
    return best, objective.cc(best)
