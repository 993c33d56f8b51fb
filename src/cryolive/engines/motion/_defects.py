"""Gain correction and hot/dead pixel replacement of raw frames."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cryolive.engines.motion._fourier import Float

_OFFSETS = ((0, 2), (0, -2), (2, 0), (-2, 0), (2, 2), (-2, -2), (2, -2), (-2, 2))


@dataclass(frozen=True)
class DefectMap:
    """Defective pixels and where each takes its value from.

    Attributes
    ----------
    pixels : (d,) int64
        Flat indices of hot and dead pixels.
    sources : (d,) int64
        Flat index of a good pixel two pixels away whose value (in the same frame) replaces
        each defect: noise like its neighbours', uncorrelated between frames, so a replaced
        pixel neither pulls the alignment towards zero shift nor stands out in the sum.
    n_hot, n_dead : int
        How many were hot (too many counts) and dead (too few).
    """

    pixels: NDArray[np.int64]
    sources: NDArray[np.int64]
    n_hot: int
    n_dead: int


_SUM_BLOCK_PX = 1 << 16  # pixels per block in the per-pixel passes over frames


def find_defects(total: Float, *, n_frames: int, sigma: float = 8.0) -> DefectMap:
    """Hot and dead pixels of a detector from the gain-corrected sum of a movie's frames.

    Parameters
    ----------
    total : (y, x) float32
        Sum over frames (gain-corrected counts per pixel).
    n_frames : int
        Frames in the sum (a dead pixel is one with no count where at least 20 were expected).
    sigma : float
        A pixel further than this many robust standard deviations above the mean is hot, below
        it dead.
    """
    if n_frames < 1:
        raise ValueError(f"n_frames: must be at least 1, got {n_frames}")
    sample = total.ravel()[:: max(1, total.size // 200_000)]
    median = float(np.median(sample))
    spread = 1.4826 * float(np.median(np.abs(sample - median)))
    spread = max(spread, float(np.sqrt(max(median, 1.0))) * 0.5)
    hot = total > median + sigma * spread
    dead = total < median - sigma * spread
    if median >= 20.0:
        dead |= total <= 0
    return defect_map(hot, dead)


def defect_map(hot: NDArray[np.bool_], dead: NDArray[np.bool_]) -> DefectMap:
    """A :class:`DefectMap` from boolean (y, x) masks of hot and dead pixels."""
    bad = hot | dead
    ny, nx = bad.shape
    ys, xs = np.nonzero(bad)
    src_y, src_x = ys.copy(), xs.copy()
    unresolved = np.ones(ys.size, dtype=bool)
    for dy, dx in _OFFSETS:
        cy, cx = np.clip(ys + dy, 0, ny - 1), np.clip(xs + dx, 0, nx - 1)
        usable = unresolved & ~bad[cy, cx]
        src_y[usable], src_x[usable] = cy[usable], cx[usable]
        unresolved &= ~usable
    pixels = (ys * nx + xs).astype(np.int64)
    sources = (src_y * nx + src_x).astype(np.int64)
    return DefectMap(pixels, sources, int(hot.sum()), int((dead & ~hot).sum()))


def corrected_frame(
    raw: NDArray[np.generic],
    *,
    gain: Float | None,
    defects: DefectMap | None,
    out: Float | None = None,
) -> Float:
    """One frame as float32, times the gain, with defects replaced.

    ``raw``: (y, x); ``out``: (y, x) float32 to write into (may be a view), else a new array.
    """
    frame = np.empty(raw.shape, dtype=np.float32) if out is None else out
    rows = max(1, _SUM_BLOCK_PX // max(raw.shape[1], 1))
    for start in range(0, raw.shape[0], rows):  # blocks of rows: the cast stays in cache
        block = frame[start : start + rows]
        block[...] = raw[start : start + rows]
        if gain is not None:
            block *= gain[start : start + rows]
    if defects is not None and defects.pixels.size:
        ys, xs = np.divmod(defects.pixels, raw.shape[1])
        sy, sx = np.divmod(defects.sources, raw.shape[1])
        frame[ys, xs] = frame[sy, sx]
    return frame


def resolve_defects(
    frames: NDArray[np.generic], gain: Float | None, defects: DefectMap | bool | None
) -> DefectMap | None:
    """The defects to replace: ``True`` finds them in ``frames`` (n, y, x), gain-corrected."""
    if defects is not True:
        return defects or None
    kind = np.float64 if frames.dtype.kind == "f" else np.uint32
    total = np.empty(frames.shape[1:], dtype=np.float32)
    rows = max(1, _SUM_BLOCK_PX // max(frames.shape[2], 1))
    for start in range(0, frames.shape[1], rows):  # a block of rows at a time: stays in cache
        block = slice(start, start + rows)
        total[block] = frames[:, block].sum(axis=0, dtype=kind)
    if gain is not None:
        total *= gain
    return find_defects(total, n_frames=frames.shape[0])
