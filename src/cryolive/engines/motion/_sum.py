"""Sum a movie's frames moved back by known shifts (whole-frame, plus a local field)."""

from __future__ import annotations

import os
from functools import partial

import numpy as np
from numpy.typing import NDArray

from cryolive.engines.motion._defects import DefectMap, corrected_frame
from cryolive.engines.motion._field import PatchField
from cryolive.engines.motion._fourier import Float
from cryolive.engines.motion._tiles import TileLayout, sum_frames
from cryolive.engines.motion._torch import sum_frames_torch

_MARGIN_PX = 32


def shift_and_sum(
    frames: NDArray[np.generic],
    shifts_px: NDArray[np.float64],
    *,
    pixel_size_a: float,
    dose_per_frame_e_per_a2: float,
    voltage_kv: float = 300.0,
    pre_exposure_e_per_a2: float = 0.0,
    gain: NDArray[np.floating] | None = None,
    defects: DefectMap | None = None,
    field: PatchField | None = None,
    tile_px: int = 512,
    workers: int | None = None,
    device: str | None = None,
) -> tuple[Float, Float]:
    """Plain and dose-weighted sums of frames moved back by their shifts (Fourier phase ramps).

    The sums are registered on frame 0. Each frame is cut into tiles of ``tile_px`` (with
    32 px of context); a tile moves rigidly by the whole-frame shift plus the local field at
    its centre.

    Parameters
    ----------
    frames : (n, y, x) any real dtype
        Raw frames.
    shifts_px : (n, 2) float64
        (dy, dx) px by which each frame's content moved (any common offset is removed).
    pixel_size_a, dose_per_frame_e_per_a2, voltage_kv, pre_exposure_e_per_a2
        As for :func:`correct_motion` (Å, e/Å², kV, e/Å²).
    gain : (y, x) float or None
        Multiplicative gain in the movies' orientation.
    defects : DefectMap or None
        Pixels to replace.
    field : PatchField or None
        Local motion on top of ``shifts_px``.
    tile_px : int
        Tile width (px).
    workers : int or None
        FFT threads (None: all CPUs).
    device : str or None
        A PyTorch device (``"cuda"``, ``"cpu"`` …) for the per-frame work; None: numpy.

    Returns
    -------
    plain, dose_weighted : (y, x) float32
    """
    n, ny, nx = frames.shape
    shifts = np.asarray(shifts_px, dtype=np.float64)
    if shifts.shape != (n, 2):
        raise ValueError(f"shifts_px: expected shape {(n, 2)}, got {shifts.shape}")
    if tile_px < 64:
        raise ValueError(f"tile_px: must be at least 64, got {tile_px}")
    gain32 = None if gain is None else np.asarray(gain, dtype=np.float32)

    def frame_into(t: int, out: Float) -> None:
        corrected_frame(frames[t], gain=gain32, defects=defects, out=out)

    layout = TileLayout((ny, nx), core=min(tile_px, max(ny, nx)), margin=_MARGIN_PX)
    ty, tx = layout.counts
    tile_shifts = np.repeat((shifts - shifts[0])[:, None, :], ty * tx, axis=1)
    if field is not None:
        local = field.at(*layout.centres())
        tile_shifts += local - local[:1]
    torch_job = None
    if device is not None:
        torch_job = partial(sum_frames_torch, frames, gain=gain32, defects=defects, device=device)
    return sum_frames(
        frame_into, n, layout, tile_shifts, pixel_size_a=pixel_size_a, torch_job=torch_job,
        dose_per_frame_e_per_a2=dose_per_frame_e_per_a2,
        pre_exposure_e_per_a2=pre_exposure_e_per_a2, voltage_kv=voltage_kv,
        workers=workers or os.cpu_count() or 1,
    )  # fmt: skip
