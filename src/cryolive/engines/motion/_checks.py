"""Checks of the inputs of :func:`correct_motion`."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from cryolive.engines.motion._errors import UnusableMovieError


def check_inputs(
    frames: NDArray[np.generic],
    gain: NDArray[np.floating] | None,
    *,
    pixel_size_a: float,
    dose_per_frame_e_per_a2: float,
    patches: tuple[int, int] | None,
    tile_px: int,
    max_iterations: int,
) -> None:
    """Raise ValueError for a bad parameter, UnusableMovieError for a movie that is unusable."""
    if not pixel_size_a > 0:
        raise ValueError(f"pixel_size_a: must be positive, got {pixel_size_a}")
    if not dose_per_frame_e_per_a2 > 0:
        raise ValueError(
            f"dose_per_frame_e_per_a2: must be positive, got {dose_per_frame_e_per_a2}"
        )
    if patches is not None and (len(patches) != 2 or min(patches) < 1):
        raise ValueError(f"patches: need two counts >= 1 (across x, across y), got {patches}")
    if tile_px < 64:
        raise ValueError(f"tile_px: must be at least 64, got {tile_px}")
    if max_iterations < 1:
        raise ValueError(f"max_iterations: must be at least 1, got {max_iterations}")
    if frames.ndim != 3:
        raise UnusableMovieError("shape", f"frames must be (n, y, x), got shape {frames.shape}")
    n, ny, nx = frames.shape
    if n < 2:
        raise UnusableMovieError("too-few-frames", f"{n} frame(s); motion needs at least 2")
    if min(ny, nx) < 64:
        raise UnusableMovieError("shape", f"frames of {ny} x {nx} px are too small (< 64)")
    if frames.dtype.kind not in "uif":
        raise UnusableMovieError("shape", f"frames of dtype {frames.dtype} are not numbers")
    if gain is not None and gain.shape != (ny, nx):
        raise UnusableMovieError(
            "gain-shape", f"gain is {gain.shape}, frames are {(ny, nx)}: wrong orientation?"
        )
    if gain is not None and not np.all(np.isfinite(gain)):
        raise UnusableMovieError("non-finite", "the gain reference has NaN or infinite values")
    if frames.dtype.kind == "f":
        for t in range(n):
            bad = int(frames[t].size - np.count_nonzero(np.isfinite(frames[t])))
            if bad:
                raise UnusableMovieError(
                    "non-finite", f"frame {t} has {bad} NaN or infinite pixels"
                )
    if not np.any(frames[0]) and not np.any(frames[-1]):
        raise UnusableMovieError("empty", "the first and last frames are all zero")
