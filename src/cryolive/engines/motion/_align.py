"""Iterative alignment of a stack of frames (as half spectra) against the sum of the others."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cryolive.engines import fft as pfft
from cryolive.engines.motion._fourier import Complex, Float, crop_spectrum, phase_ramps

_COARSE_PX = 128
_CHOOSE_SMOOTHING_ITERATIONS = 3
_MIN_FRAMES_TO_SMOOTH = 8  # fewer: generalised cross-validation has too little to go on
_CHUNK = 4  # frames per block in the alignment loop (bounds its temporaries)


@dataclass(frozen=True)
class StackAlignment:
    """Shifts found for a stack. ``shifts``: (n, 2) float64 (dy, dx) px of each frame's content,
    mean zero; ``iterations``: refinement iterations run; ``residual_px``: largest update of the
    last iteration; ``scatter_px``: RMS distance (px, per axis) of the frames' own
    measurements from the smoothed trajectory, an estimate of one frame's measurement noise
    (0 without smoothing)."""

    shifts: NDArray[np.float64]
    iterations: int
    residual_px: float
    scatter_px: float = 0.0


def _aligned(spectra: Complex, shifts: NDArray[np.float64], shape: tuple[int, int]) -> Complex:
    ry, rx = phase_ramps(shifts, shape)
    out = spectra * ry
    out *= rx
    return out


def _cross_spectra(aligned: Complex, weight: Float) -> Complex:
    """conj(sum of the others) * frame * weight, for every frame: (n, y, x') complex64."""
    total = aligned.sum(axis=0)
    cross = np.conj(total)[None] - np.conj(aligned)
    cross *= aligned
    cross *= weight
    return np.asarray(cross, dtype=np.complex64)


def _crop_real(array: Float, shape: tuple[int, int], out: tuple[int, int]) -> Float:
    """The entries of a real (y, x') half-spectrum filter that :func:`crop_spectrum` keeps."""
    half = out[0] // 2
    rows = np.concatenate([array[:half], array[shape[0] - half :]], axis=0)
    return np.ascontiguousarray(rows[:, : out[1] // 2 + 1])


def _subpixel(
    left: NDArray[np.float64], mid: NDArray[np.float64], right: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Offset of a peak from three samples: Gaussian (log-parabola) fit, parabola if any <= 0."""
    positive = (left > 0) & (mid > 0) & (right > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        la, lb, lc = (np.log(np.where(positive, v, 1.0)) for v in (left, mid, right))
        gauss = (la - lc) / (2.0 * (la - 2.0 * lb + lc))
        para = (left - right) / (2.0 * (left - 2.0 * mid + right))
    out = np.where(positive, gauss, para)
    return np.asarray(np.clip(np.nan_to_num(out), -0.5, 0.5), dtype=np.float64)


def _window_cc(spectra: Complex | Float, shape: tuple[int, int], half: int) -> NDArray[np.float64]:
    """Real images of half ``spectra`` (n, y, x') evaluated only within +-``half`` px of the
    origin (a partial inverse DFT): (n, 2 half + 1, 2 half + 1) float64. Real ``spectra``
    (float32) take two real gemms instead of a complex one."""
    ny, nx = shape
    offsets = np.arange(-half, half + 1)
    ky = np.fft.fftfreq(ny) * ny
    kx = np.arange(spectra.shape[-1])
    ey = np.exp(2j * np.pi * np.outer(offsets, ky) / ny).astype(np.complex64)
    hermitian = np.where((kx == 0) | (kx == nx // 2), 1.0, 2.0)
    ex = (hermitian[:, None] * np.exp(2j * np.pi * np.outer(kx, offsets) / nx)).astype(np.complex64)
    n, rows, cols = spectra.shape
    flat = spectra.reshape(n * rows, cols)
    real = np.isrealobj(flat)  # then two real gemms; else one complex gemm
    along_x = (flat @ ex.real) + 1j * (flat @ ex.imag) if real else flat @ ex
    along_x = along_x.reshape(n, rows, -1)
    return np.asarray(np.einsum("wy,nyv->nwv", ey, along_x).real, dtype=np.float64)


def _placed_sum(spectra: Complex, shifts: NDArray[np.float64], shape: tuple[int, int]) -> Complex:
    """Sum of the frames moved by ``shifts``, a chunk of frames at a time, (y, x') complex64."""
    total = np.zeros(spectra.shape[1:], dtype=np.complex64)
    for start in range(0, spectra.shape[0], _CHUNK):
        chunk = slice(start, start + _CHUNK)
        total += _aligned(spectra[chunk], shifts[chunk], shape).sum(axis=0)
    return total


def _cross_window(
    spectra: Complex,
    shifts: NDArray[np.float64],
    own: NDArray[np.float64],
    weight: Float,
    shape: tuple[int, int],
    half: int,
) -> NDArray[np.float64]:
    """Correlation windows (n, 2 half + 1, 2 half + 1) of each frame placed at ``own``
    against the sum of the others placed at ``shifts``, filtered by ``weight``.

    Done a few frames at a time: the full-stack temporaries (placed frames, the others'
    sums, their products) would each be as large as ``spectra`` itself.
    """
    total = _placed_sum(spectra, shifts, shape)
    windows = []
    for start in range(0, spectra.shape[0], _CHUNK):
        chunk = slice(start, start + _CHUNK)
        placed = _aligned(spectra[chunk], shifts[chunk], shape)
        cross = total[None] - placed
        np.conj(cross, out=cross)
        cross *= weight
        cross *= placed if own is shifts else _aligned(spectra[chunk], own[chunk], shape)
        windows.append(_window_cc(cross, shape, half))
    return np.concatenate(windows, axis=0)


def _peaks(cc: NDArray[np.float64]) -> NDArray[np.float64]:
    """Sub-pixel peak (dy, dx) px of each (2 h + 1, 2 h + 1) window, offsets from its middle."""
    width = cc.shape[-1]
    half = width // 2
    flat = cc.reshape(cc.shape[0], -1).argmax(axis=1)
    iy, ix = np.clip(flat // width, 1, width - 2), np.clip(flat % width, 1, width - 2)
    rows = np.arange(cc.shape[0])
    dy = _subpixel(cc[rows, iy - 1, ix], cc[rows, iy, ix], cc[rows, iy + 1, ix])
    dx = _subpixel(cc[rows, iy, ix - 1], cc[rows, iy, ix], cc[rows, iy, ix + 1])
    return np.stack([iy - half + dy, ix - half + dx], axis=1)


def _coarse_peaks(
    cross: Complex, shape: tuple[int, int], search_px: float, workers: int
) -> NDArray[np.float64]:
    """Integer peak (px) of each frame's correlation within +-``search_px``, (n, 2)."""
    cy, cx = shape
    cc = pfft.irfft2(cross, s=(cy, cx), workers=workers)
    y = np.fft.fftfreq(cy, 1.0 / cy)[:, None]
    x = np.fft.fftfreq(cx, 1.0 / cx)[None, :]
    cc = np.where((np.abs(y) <= search_px) & (np.abs(x) <= search_px), cc, -np.inf)
    flat = cc.reshape(cc.shape[0], -1).argmax(axis=1)
    iy, ix = flat // cx, flat % cx
    return np.stack([y[iy, 0], x[0, ix]], axis=1)


def smooth_trajectory(
    raw: NDArray[np.float64], *, order: int = 2, lambdas: NDArray[np.float64] | None = None
) -> tuple[NDArray[np.float64], float]:
    """Penalised least-squares (Whittaker) smoothing of a noisy (n, 2) trajectory.

    Minimises ``|raw - z|^2 + lam |D z|^2`` per axis, ``D`` the ``order``-th difference
    along time, with ``lam`` chosen by generalised cross-validation (the same for both axes,
    from their summed scores): a trajectory measured with little noise keeps its detail, a
    noisy one is smoothed towards a low-order curve. Returns the smoothed (n, 2) trajectory
    and the ``lam`` used (0: too few points to smooth, fewer than 8).
    """
    n = raw.shape[0]
    if n < max(order + 3, _MIN_FRAMES_TO_SMOOTH):
        return raw.copy(), 0.0
    if lambdas is None:
        lambdas = np.logspace(-4, 6, 41)
    diff = np.diff(np.eye(n), n=order, axis=0)
    penalty = diff.T @ diff
    best, best_score, best_lam = raw, np.inf, 0.0
    for lam in lambdas:
        hat = np.linalg.inv(np.eye(n) + lam * penalty)
        fitted = hat @ raw
        dof = n - float(np.trace(hat))
        score = n * float(np.sum((raw - fitted) ** 2)) / max(dof, 1e-9) ** 2
        if score < best_score:
            best, best_score, best_lam = fitted, score, float(lam)
    return np.asarray(best, dtype=np.float64), best_lam


def align_stack(
    spectra: Complex,
    shape: tuple[int, int],
    *,
    weight: Float,
    search_px: float,
    max_iterations: int = 10,
    tolerance_px: float = 0.005,
    smooth: bool = False,
    workers: int = 1,
) -> StackAlignment:
    """Align each frame to the sum of all the others, iteratively.

    Parameters
    ----------
    spectra : (n, y, x // 2 + 1) complex64
        rfft2 of the frames.
    shape : (y, x)
        Real frame shape.
    weight : (y, x // 2 + 1) float32
        Filter applied to every cross-correlation spectrum (the B-factor).
    search_px : float
        Largest displacement (px) looked for; above 3 px a coarse search on a Fourier-cropped
        correlation runs first.
    max_iterations, tolerance_px
        Refinement stops after ``max_iterations`` or once no frame moves more than
        ``tolerance_px``.
    workers : int
        Threads for scipy's FFT.
    """
    n = spectra.shape[0]
    shifts = np.zeros((n, 2))
    if n < 2:
        return StackAlignment(shifts, 0, 0.0, 0.0)
    half = 3
    if search_px > 3 and max(shape) > _COARSE_PX:
        coarse = (min(shape[0], _COARSE_PX), min(shape[1], _COARSE_PX))
        scale = np.array([shape[0] / coarse[0], shape[1] / coarse[1]])
        small = crop_spectrum(spectra, shape, coarse)
        small_weight = _crop_real(weight, shape, coarse)
        for _ in range(2):
            cross = _cross_spectra(_aligned(small, shifts / scale, coarse), small_weight)
            shifts += _coarse_peaks(cross, coarse, search_px / scale.min(), workers) * scale
            shifts -= shifts.mean(axis=0)
        half = int(np.ceil(scale.max())) + 1
    # Each frame is measured against the sum of the others placed at ``shifts`` (smoothed
    # when ``smooth``), with the frame itself placed at its own last measurement ``measured``:
    # its correlation peak then sits near the origin, so the sub-pixel estimate neither
    # flips between neighbouring integer peaks nor carries their interpolation bias, and the
    # iteration settles instead of wandering by a few hundredths of a pixel.
    # The mean (k = 0) carries no shift but puts a baseline under the correlation that is
    # orders of magnitude above its peak, and float32 sums then jitter the sub-pixel
    # estimate by a few hundredths of a pixel: it is left out.
    weight = weight.copy()
    weight[0, 0] = 0.0
    measured = shifts.copy()
    residual, iterations, lam = np.inf, 0, None
    while iterations < max_iterations and residual > tolerance_px:
        measured = measured + _peaks(
            _cross_window(spectra, shifts, measured if smooth else shifts, weight, shape, half)
        )
        measured -= measured.mean(axis=0)
        found = measured
        if smooth:
            # The smoothing strength is chosen while the reference settles, then held: a
            # choice that flips between neighbours would keep the shifts from converging.
            found, chosen = smooth_trajectory(measured, lambdas=lam)
            if iterations >= _CHOOSE_SMOOTHING_ITERATIONS - 1:
                lam = np.array([chosen])
        found = found - found.mean(axis=0)
        residual = float(np.abs(found - shifts).max())
        shifts = found
        iterations += 1
        half = 2
    scatter = float(np.sqrt(np.mean((measured - shifts) ** 2))) if smooth else 0.0
    return StackAlignment(shifts, iterations, residual, scatter)
