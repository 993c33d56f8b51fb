"""Post-processing of two half maps: solvent mask, masked FSC corrected by phase randomisation,
resolution at FSC 0.143, B-factor from a Guinier fit, and the sharpened map."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cryolive.engines.postprocess._mask import auto_mask
from cryolive.engines.postprocess._shells import radius_grid, shell_grid, shell_mean
from cryolive.engines.recon3d import resolution_at, shell_resolution_a

Volume = NDArray[np.float32]
Curve = NDArray[np.float64]

GUINIER_LOW_A = 10.0  # the Guinier fit starts at 10 Å (Rosenthal & Henderson 2003)
# the fit needs 1/d² from 10 Å to the resolution to span this ratio in d (a few shells)
GUINIER_MIN_RATIO = 1.25
RANDOMISE_BELOW_FSC = 0.8  # phases are randomised beyond where the unmasked FSC falls below this
GOLD_STANDARD = 0.143


class PostprocessError(ValueError):
    """Half maps that cannot be post-processed (says why)."""


@dataclass(frozen=True)
class FscCurves:
    """Per shell 0 … b//2: its resolution (Å, shell 0 infinite) and the four FSC curves."""

    resolution_a: Curve
    unmasked: Curve
    masked: Curve
    phase_randomised: Curve  # masked FSC of the halves with phases randomised beyond
    corrected: Curve  # (masked - randomised) / (1 - randomised) beyond randomise_from_shell
    randomise_from_shell: int


@dataclass(frozen=True)
class GuinierPlot:
    """ln |F| of the masked map's signal per shell against 1/d² (Å⁻²), and the fit over a range."""

    inv_d2: Curve  # 1/d² per shell, Å⁻²
    ln_amplitude: Curve  # ln of the signal amplitude, NaN where the halves share no signal
    fit_from_inv_d2: float  # the fit's range (1/(10 Å)² … 1/resolution²)
    fit_to_inv_d2: float
    slope: float  # of ln |F| against 1/d², Å²; B = -4 * slope
    intercept: float


@dataclass(frozen=True)
class PostprocessResult:
    """The sharpened maps (b, b, b) [z, y, x], the mask, the curves and the numbers."""

    sharpened: Volume  # FSC-weighted, B-corrected, low-passed at the resolution
    sharpened_masked: Volume  # ``sharpened`` times ``mask``
    mask: Volume  # in [0, 1]
    fsc: FscCurves
    guinier: GuinierPlot | None  # None when the B-factor was given
    resolution_a: float  # where the corrected FSC falls below 0.143
    bfactor_a2: float  # the B the map is sharpened with: |F| · exp(+B/4 · 1/d²); positive sharpens
    bfactor_fitted: bool


def _check_halves(
    half1: NDArray[np.floating], half2: NDArray[np.floating], pixel_size_a: float
) -> int:
    h1, h2 = np.asarray(half1), np.asarray(half2)
    if h1.ndim != 3 or len(set(h1.shape)) != 1:
        raise PostprocessError(f"half1: must be a cubic 3D map, got shape {h1.shape}")
    if h2.shape != h1.shape:
        raise PostprocessError(f"half2: shape {h2.shape} differs from half1's {h1.shape}")
    if h1.shape[0] < 16:
        raise PostprocessError(f"half1: box {h1.shape[0]} is too small (at least 16)")
    if not (np.isfinite(h1).all() and np.isfinite(h2).all()):
        raise PostprocessError("half maps: hold non-finite values")
    if not pixel_size_a > 0:
        raise PostprocessError(f"pixel_size_a: must be positive, got {pixel_size_a}")
    return int(h1.shape[0])


Spectrum = NDArray[np.complex128]


def _rfft(volume: NDArray[np.floating]) -> Spectrum:
    return np.fft.rfftn(np.asarray(volume, dtype=np.float64))


def _irfft(f: Spectrum, box: int) -> NDArray[np.float64]:
    return np.fft.irfftn(f, s=(box, box, box), axes=(0, 1, 2))


def _fsc(f1: Spectrum, f2: Spectrum, shells: NDArray[np.int64]) -> Curve:
    """FSC per shell 0 … b//2 of two rfftn transforms (as :func:`recon3d.fsc` of the maps)."""
    n = shells.shape[0] // 2 + 1
    keep = shells < n
    s = shells[keep]
    cross = np.bincount(s, (f1 * np.conj(f2)).real[keep], minlength=n)
    p1 = np.bincount(s, (np.abs(f1) ** 2)[keep], minlength=n)
    p2 = np.bincount(s, (np.abs(f2) ** 2)[keep], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = cross / np.sqrt(p1 * p2)
    return np.asarray(np.nan_to_num(out, nan=0.0), dtype=np.float64)


def _randomised(
    f: Spectrum, shells: NDArray[np.int64], from_shell: int, rng: np.random.Generator
) -> Spectrum:
    out = f.copy()
    beyond = shells >= from_shell
    phases = rng.uniform(0.0, 2.0 * np.pi, size=int(beyond.sum()))
    out[beyond] = np.abs(f[beyond]) * np.exp(1j * phases)
    return out


def randomise_phases(
    volume: NDArray[np.floating], from_shell: int, rng: np.random.Generator
) -> NDArray[np.float64]:
    """``volume`` with the phases of every shell ≥ ``from_shell`` replaced by random ones."""
    box = volume.shape[0]
    return _irfft(_randomised(_rfft(volume), shell_grid(box), from_shell, rng), box)


def _corrected(masked: Curve, randomised: Curve, from_shell: int) -> Curve:
    out = masked.copy()
    tail = slice(from_shell, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = (masked[tail] - randomised[tail]) / (1.0 - randomised[tail])
    out[tail] = np.nan_to_num(corr, nan=0.0, posinf=0.0, neginf=0.0)
    return out


def _guinier(
    fm1: Spectrum,
    fm2: Spectrum,
    shells: NDArray[np.int64],
    pixel_size_a: float,
    resolution_a: float,
) -> GuinierPlot:
    """Fit ln |F| (from the masked halves' cross spectrum, so noise does not bias it) from 10 Å
    on."""
    box = shells.shape[0]
    cross = shell_mean((fm1 * np.conj(fm2)).real, shells)
    with np.errstate(divide="ignore", invalid="ignore"):
        ln_amp = np.where(cross > 0, 0.5 * np.log(np.where(cross > 0, cross, 1.0)), np.nan)
    inv_d2 = (np.arange(box // 2 + 1) / (box * pixel_size_a)) ** 2
    lo, hi = 1.0 / GUINIER_LOW_A**2, 1.0 / resolution_a**2
    use = (inv_d2 >= lo) & (inv_d2 <= hi * 1.0001) & np.isfinite(ln_amp)
    if use.sum() < 3:
        raise PostprocessError(
            f"resolution {resolution_a:.1f} Å leaves fewer than 3 shells between "
            f"{GUINIER_LOW_A:g} Å and it for the Guinier fit; give the B-factor (bfactor=)"
        )
    slope, intercept = np.polyfit(inv_d2[use], ln_amp[use], 1)
    return GuinierPlot(inv_d2, ln_amp, lo, hi, float(slope), float(intercept))


def _sharpen(
    f_average: Spectrum,
    pixel_size_a: float,
    weights: Curve,
    bfactor_a2: float,
    resolution_a: float,
) -> NDArray[np.float32]:
    box = f_average.shape[0]
    r = radius_grid(box)
    shells = np.minimum(np.rint(r).astype(np.int64), box // 2)
    inv_d2 = (r / (box * pixel_size_a)) ** 2
    cut = box * pixel_size_a / resolution_a
    edge = np.clip((r - cut) / 2.0 + 0.5, 0.0, 1.0)  # raised cosine over 2 shells at the cut
    lowpass = 0.5 + 0.5 * np.cos(np.pi * edge)
    f = f_average * (weights[shells] * np.exp(bfactor_a2 / 4.0 * inv_d2) * lowpass)
    return np.asarray(_irfft(f, box), dtype=np.float32)


def postprocess(
    half1: NDArray[np.floating],
    half2: NDArray[np.floating],
    pixel_size_a: float,
    *,
    mask: NDArray[np.floating] | None = None,
    bfactor: float | None = None,
    rng: np.random.Generator | None = None,
) -> PostprocessResult:
    """Mask, gold-standard resolution, B-factor and sharpened map from two half maps.

    Parameters
    ----------
    half1, half2 : (b, b, b) float [z, y, x]
        Independently refined half maps.
    pixel_size_a : float
        Voxel size, Å.
    mask : (b, b, b) float in [0, 1], optional
        Solvent mask; by default made by :func:`auto_mask` from the average of the halves.
    bfactor : float, optional
        B-factor (Å²) to sharpen with, positive sharpens (RELION's ``--adhoc_bfac`` is its
        negative); by default fitted: ln |F| against 1/d² from 10 Å to the resolution, B = -4 *
        slope.
    rng : numpy Generator, optional
        For the random phases (default: a fixed seed, so results repeat).

    Returns
    -------
    PostprocessResult

    Notes
    -----
    Phases are randomised (independently in each half) beyond the shell where the unmasked FSC
    first falls below 0.8; the masked FSC of those halves measures the correlation the mask
    itself brings, and the corrected FSC removes it (Chen et al. 2013). The map is weighted by
    √(2 FSC / (1 + FSC)) per shell, multiplied by exp(B/4 · 1/d²) and low-passed at the
    resolution (Rosenthal & Henderson 2003). The Guinier plot uses the halves' cross spectrum
    (signal power without the noise of either half).

    References
    ----------
    Rosenthal & Henderson (2003) J. Mol. Biol. 333, 721. doi:10.1016/j.jmb.2003.07.013
    Chen et al. (2013) Ultramicroscopy 135, 24. doi:10.1016/j.ultramic.2013.06.004
    """
    box = _check_halves(half1, half2, pixel_size_a)
    h1 = np.asarray(half1, dtype=np.float64)
    h2 = np.asarray(half2, dtype=np.float64)
    rng = rng if rng is not None else np.random.default_rng(0)
    average = 0.5 * (h1 + h2)
    if mask is None:
        try:
            m = auto_mask(average, pixel_size_a).astype(np.float64)
        except ValueError as exc:
            raise PostprocessError(str(exc)) from exc
    else:
        m = np.asarray(mask, dtype=np.float64)
        if m.shape != h1.shape:
            raise PostprocessError(f"mask: shape {m.shape} differs from the maps' {h1.shape}")
        if not np.isfinite(m).all() or m.min() < -1e-3 or m.max() > 1 + 1e-3 or m.max() <= 0:
            raise PostprocessError("mask: values must lie in [0, 1], and not all be 0")
        m = np.clip(m, 0.0, 1.0)

    # each transform once: the halves', the masked halves', the randomised masked halves'
    shells = shell_grid(box)
    f1, f2 = _rfft(h1), _rfft(h2)
    fm1, fm2 = _rfft(h1 * m), _rfft(h2 * m)
    unmasked = _fsc(f1, f2, shells)
    masked = _fsc(fm1, fm2, shells)
    below = np.flatnonzero(unmasked[1:] < RANDOMISE_BELOW_FSC)
    from_shell = int(below[0]) + 1 if below.size else box // 2
    r1 = _irfft(_randomised(f1, shells, from_shell, rng), box)
    r2 = _irfft(_randomised(f2, shells, from_shell, rng), box)
    randomised = _fsc(_rfft(r1 * m), _rfft(r2 * m), shells)
    corrected = _corrected(masked, randomised, from_shell)
    curves = FscCurves(
        shell_resolution_a(box, pixel_size_a), unmasked, masked, randomised, corrected, from_shell
    )
    resolution = resolution_at(corrected, box, pixel_size_a, GOLD_STANDARD)

    guinier: GuinierPlot | None = None
    b = 0.0 if bfactor is None else float(bfactor)
    if bfactor is None and resolution < GUINIER_LOW_A / GUINIER_MIN_RATIO:
        try:
            guinier = _guinier(fm1, fm2, shells, pixel_size_a, resolution)
            b = -4.0 * guinier.slope
        except PostprocessError:
            guinier = None  # too few shells in the fit's range
    # else, at a resolution too low for a Guinier fit (an early live refinement): no
    # sharpening (B = 0, bfactor_fitted False), as a user would rather have the map than an error
    c = np.clip(corrected, 0.0, 0.999)
    weights = np.sqrt(2.0 * c / (1.0 + c))
    weights[0] = 1.0
    sharpened = _sharpen(0.5 * (f1 + f2), pixel_size_a, weights, b, resolution)
    return PostprocessResult(
        sharpened=sharpened,
        sharpened_masked=np.asarray(sharpened * m, dtype=np.float32),
        mask=np.asarray(m, dtype=np.float32),
        fsc=curves,
        guinier=guinier,
        resolution_a=resolution,
        bfactor_a2=b,
        bfactor_fitted=guinier is not None,
    )
