"""Alignment of particles to class averages.

A global search at a coarse pixel size scores every particle against every class average at
every in-plane angle and every shift in one matrix product (the averages, turned and shifted,
are rows of a bank); a local search at the working pixel size then refines the angle in
quarter steps and the shift to a fraction of a pixel by cross-correlation in Fourier space.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import fft as sfft

from cryolive.engines.class2d._geometry import radius_grid, transform, transform_stack

CHUNK = 512


@dataclass(frozen=True)
class Coarse:
    """Best pose of each particle for each class: score, angle and shift.

    ``score`` is the correlation with the unit-norm average (turned and shifted), (n, k);
    ``angle_deg`` (n, k); ``shift_px`` (n, k, 2) in coarse pixels.
    """

    score: NDArray[np.float32]
    angle_deg: NDArray[np.float64]
    shift_px: NDArray[np.float64]


def shift_grid(max_shift_px: float) -> NDArray[np.int64]:
    """Integer shifts (dy, dx) within a disc of ``max_shift_px`` (at least the zero shift)."""
    m = int(np.floor(max_shift_px))
    dy, dx = np.mgrid[-m : m + 1, -m : m + 1]
    keep = dy * dy + dx * dx <= max_shift_px * max_shift_px + 1e-9
    grid = np.stack([dy[keep], dx[keep]], axis=1)
    return grid if len(grid) else np.zeros((1, 2), dtype=np.int64)


def disc_pixels(box_px: int, radius_px: float) -> NDArray[np.int64]:
    """Flat indices of the pixels within ``radius_px`` of the centre."""
    return np.flatnonzero(radius_grid(box_px).ravel() <= radius_px)


def coarse_search(
    features: NDArray[np.float32],
    averages: NDArray[np.float32],
    *,
    angles_deg: NDArray[np.float64],
    shifts_px: NDArray[np.int64],
    pixels: NDArray[np.int64],
) -> Coarse:
    """Score ``features`` (n, p: particle pixels at ``pixels``) against every pose of every average.

    ``averages`` are (k, b, b) at the coarse pixel size.
    """
    k = averages.shape[0]
    n_angles, n_shifts = len(angles_deg), len(shifts_px)
    b = averages.shape[-1]
    turned = transform_stack(
        averages,
        np.repeat(np.arange(k), n_angles),
        np.tile(angles_deg, k),
        np.zeros((k * n_angles, 2)),
    )
    bank = np.empty((n_shifts, k * n_angles, len(pixels)), dtype=np.float32)
    for s, (dy, dx) in enumerate(shifts_px):
        moved = np.roll(turned, (int(dy), int(dx)), axis=(1, 2))
        bank[s] = moved.reshape(k * n_angles, b * b)[:, pixels]
    bank = bank.reshape(n_shifts, k, n_angles, -1).transpose(1, 2, 0, 3)
    norms = np.linalg.norm(bank, axis=-1, keepdims=True)
    bank /= np.maximum(norms, 1e-12)
    flat = np.ascontiguousarray(bank.reshape(k * n_angles * n_shifts, -1))
    n = features.shape[0]
    score = np.empty((n, k), dtype=np.float32)
    best = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, CHUNK):
        block = (features[start : start + CHUNK] @ flat.T).reshape(-1, k, n_angles * n_shifts)
        idx = block.argmax(axis=2)
        best[start : start + CHUNK] = idx
        score[start : start + CHUNK] = np.take_along_axis(block, idx[..., None], axis=2)[..., 0]
    return Coarse(
        score=score,
        angle_deg=angles_deg[best // n_shifts],
        shift_px=shifts_px[best % n_shifts].astype(np.float64),
    )


def local_refine(
    images: NDArray[np.float32],
    averages: NDArray[np.float32],
    classes: NDArray[np.int64],
    angle_deg: NDArray[np.float64],
    shift_px: NDArray[np.float64],
    *,
    half: NDArray[np.int64],
    step_deg: float,
    search_px: float,
    mask: NDArray[np.float32],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float32]]:
    """Refine each particle's pose in its class at the working pixel size.

    ``averages`` are (2, k, b, b): each particle is aligned against the average of its own
    half-set (``half``, 0 or 1), so that noise aligned to noise does not inflate the FRC.

    Angles are tried at ``step_deg``/4 within ±¾ ``step_deg`` of ``angle_deg``; shifts within
    ``search_px`` of ``shift_px`` (working pixels), to a fraction of a pixel by fitting a
    parabola through the correlation peak. Returns angles, shifts and peak correlations.
    """
    b = images.shape[-1]
    fine = step_deg / 4.0
    n_fine = round(360.0 / fine)
    fine = 360.0 / n_fine
    offsets = np.arange(-3, 4)
    n_keys = averages.shape[1] * n_fine
    base_all = np.rint(angle_deg / fine).astype(np.int64)
    wanted = np.unique(
        half[:, None] * n_keys + classes[:, None] * n_fine + (base_all[:, None] + offsets) % n_fine
    )
    turned = {}
    for key in wanted:
        h, rest = divmod(int(key), n_keys)
        c, a = divmod(rest, n_fine)
        ref = transform(averages[h, c], angle_deg=a * fine, order=3) * mask
        ref /= max(float(np.linalg.norm(ref)), 1e-12)
        turned[int(key)] = sfft.rfft2(ref)
    w = int(np.ceil(search_px)) + 1
    dy, dx = np.mgrid[-w : w + 1, -w : w + 1]
    n = images.shape[0]
    best_angle = np.empty(n)
    best_shift = np.empty((n, 2))
    best_peak = np.full(n, -np.inf, dtype=np.float32)
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        spectra = sfft.rfft2(images[start:stop] * mask, workers=-1)
        base = np.rint(angle_deg[start:stop] / fine).astype(np.int64)
        centre = np.rint(shift_px[start:stop]).astype(np.int64)
        rows = np.arange(stop - start)
        for off in offsets:
            keys = half[start:stop] * n_keys + classes[start:stop] * n_fine + (base + off) % n_fine
            refs = np.stack([turned[int(key)] for key in keys])
            maps = sfft.irfft2(spectra * np.conj(refs), s=(b, b), workers=-1)
            ys = (centre[:, 0, None, None] + dy[None]) % b
            xs = (centre[:, 1, None, None] + dx[None]) % b
            window = maps[rows[:, None, None], ys, xs]  # (n, 2w+1, 2w+1)
            inner = window[:, 1:-1, 1:-1].reshape(len(rows), -1)
            arg = inner.argmax(axis=1)
            iy, ix = np.divmod(arg, 2 * w - 1)
            iy, ix = iy + 1, ix + 1
            peak = window[rows, iy, ix]
            better = peak > best_peak[start:stop]
            if not better.any():
                continue
            sub_y = _vertex(window[rows, iy - 1, ix], peak, window[rows, iy + 1, ix])
            sub_x = _vertex(window[rows, iy, ix - 1], peak, window[rows, iy, ix + 1])
            sy = centre[:, 0] + iy - w + sub_y
            sx = centre[:, 1] + ix - w + sub_x
            sel = np.flatnonzero(better)
            best_peak[start + sel] = peak[sel]
            best_angle[start + sel] = ((base[sel] + off) % n_fine) * fine
            best_shift[start + sel, 0] = sy[sel]
            best_shift[start + sel, 1] = sx[sel]
    return best_angle, best_shift, best_peak


def _vertex(
    left: NDArray[np.floating], mid: NDArray[np.floating], right: NDArray[np.floating]
) -> NDArray[np.float64]:
    """Offset (-0.5 to 0.5) of the vertex of the parabola through three equally spaced values."""
    denom = left - 2.0 * mid + right
    with np.errstate(invalid="ignore", divide="ignore"):
        off = np.where(denom < 0, 0.5 * (left - right) / denom, 0.0)
    return np.asarray(np.clip(off, -0.5, 0.5), dtype=np.float64)
