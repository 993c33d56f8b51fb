"""Iterative alignment of a stack of frames (as half spectra) against the sum of the others."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import fft as sfft

from cryolive.engines.motion._fourier import Complex, Float, crop_spectrum, phase_ramps

_COARSE_PX = 128


@dataclass(frozen=True)
class StackAlignment:
    """Shifts found for a stack. ``shifts``: (n, 2) float64 (dy, dx) px of each frame's content,
    mean zero; ``iterations``: refinement iterations run; ``residual_px``: largest update of the
    last iteration."""

    shifts: NDArray[np.float64]
    iterations: int
    residual_px: float


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
    cc = sfft.irfft2(cross, s=(cy, cx), workers=workers)
    y = np.fft.fftfreq(cy, 1.0 / cy)[:, None]
    x = np.fft.fftfreq(cx, 1.0 / cx)[None, :]
    cc = np.where((np.abs(y) <= search_px) & (np.abs(x) <= search_px), cc, -np.inf)
    flat = cc.reshape(cc.shape[0], -1).argmax(axis=1)
    iy, ix = flat // cx, flat % cx
    return np.stack([y[iy, 0], x[0, ix]], axis=1)


def align_stack(
    spectra: Complex,
    shape: tuple[int, int],
    *,
    weight: Float,
    search_px: float,
    max_iterations: int = 10,
    tolerance_px: float = 0.005,
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
        return StackAlignment(shifts, 0, 0.0)
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
    # conj(total - A_t) A_t W = conj(total) A_t W - |A_t|^2 W; the second term does not
    # depend on the shifts: its windowed correlation is computed once.
    power = spectra.real**2
    power += spectra.imag**2
    power *= weight
    self_cc = _window_cc(power, shape, half)
    residual, iterations = np.inf, 0
    while iterations < max_iterations and residual > tolerance_px:
        aligned = _aligned(spectra, shifts, shape)
        reference = np.conj(aligned.sum(axis=0))
        reference *= weight
        aligned *= reference
        cut = self_cc.shape[-1] // 2 - half
        window = self_cc[:, cut : self_cc.shape[-1] - cut, cut : self_cc.shape[-1] - cut]
        step = _peaks(_window_cc(aligned, shape, half) - window)
        shifts += step
        shifts -= shifts.mean(axis=0)
        residual = float(np.abs(step).max())
        iterations += 1
        half = 2
    return StackAlignment(shifts, iterations, residual)
