"""Measure local motion: align every patch of the globally aligned frames on its own."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from cryolive.engines import fft as pfft
from cryolive.engines.motion._align import align_stack
from cryolive.engines.motion._fourier import Float, even_fast_len, radial_frequency

_OVERLAP = 1.5  # patch width / spacing of patch centres


def _taper(size: int) -> Float:
    """Tukey-like 2D window: flat middle, cosine edges over a quarter of the width, (s, s)."""
    edge = max(size // 4, 1)
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(edge) + 0.5) / edge)
    line = np.ones(size)
    line[:edge], line[size - edge :] = ramp, ramp[::-1]
    return np.outer(line, line).astype(np.float32)


def group_starts(n_frames: int, group: int) -> NDArray[np.intp]:
    """First frame of each group of ``group`` consecutive frames (the last may be larger)."""
    count = max(1, n_frames // max(group, 1))
    return np.asarray([i * max(group, 1) for i in range(count)], dtype=np.intp)


def group_times(n_frames: int, group: int) -> NDArray[np.float64]:
    """Middle frame index (fractional) of each group of :func:`group_starts`, (g,) float64."""
    starts = group_starts(n_frames, group)
    ends = np.append(starts[1:], n_frames)
    return np.asarray((starts + ends - 1) / 2.0, dtype=np.float64)


def patch_layout(
    shape: tuple[int, int], grid: tuple[int, int]
) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:
    """Centres (px) of a ``grid`` = (patches in y, patches in x) and the square patch width."""
    gy, gx = grid
    cy = (np.arange(gy) + 0.5) * shape[0] / gy
    cx = (np.arange(gx) + 0.5) * shape[1] / gx
    width = even_fast_len(int(_OVERLAP * max(shape[0] / gy, shape[1] / gx)))
    return cy, cx, min(width, shape[0] // 2 * 2, shape[1] // 2 * 2)


def measure_patches(
    frames: Float,
    grid: tuple[int, int],
    *,
    pixel_size_a: float,
    bfactor_a2: float,
    search_px: float,
    workers: int = 1,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Residual shift of every patch in every frame.

    Parameters
    ----------
    frames : (g, y, x) float32
        Globally aligned frames, or sums of groups of consecutive frames (more signal per
        measurement; the shift found belongs to the group's middle, :func:`group_times`).
    grid : (py, px)
        Patches in y and x.
    pixel_size_a : float
        Pixel size of ``frames`` (Å).
    bfactor_a2 : float
        B-factor (Å²) applied to each patch for its alignment.
    search_px : float
        Largest residual looked for (px).

    Returns
    -------
    measured : (g, py, px, 2) float64
        (dy, dx) px of each patch's content in each group of frames (mean zero).
    centres_y, centres_x : (py,), (px,) float64
        Patch centres (px of ``frames``).
    """
    n, ny, nx = frames.shape
    cy, cx, width = patch_layout((ny, nx), grid)
    taper = _taper(width)
    k = radial_frequency((width, width), pixel_size_a)
    weight = np.exp(-bfactor_a2 * k * k / 2.0).astype(np.float32)
    measured = np.zeros((n, len(cy), len(cx), 2))
    ys = [int(np.clip(round(y - width / 2), 0, ny - width)) for y in cy]
    xs = [int(np.clip(round(x - width / 2), 0, nx - width)) for x in cx]
    for iy, y0 in enumerate(ys):
        for ix, x0 in enumerate(xs):
            patch = frames[:, y0 : y0 + width, x0 : x0 + width]
            patch = patch - patch.mean(axis=(1, 2), keepdims=True)
            patch *= taper
            spectra = pfft.rfft2(patch, workers=workers)
            found = align_stack(spectra, (width, width), weight=weight, search_px=search_px,
                                max_iterations=6, tolerance_px=0.01, workers=workers)  # fmt: skip
            measured[:, iy, ix] = found.shifts
    return measured, np.array(ys) + width / 2, np.array(xs) + width / 2
