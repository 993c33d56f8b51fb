"""Motion correction of one movie: whole-frame, then local alignment, then the sums."""

from __future__ import annotations

import os

import numpy as np
from numpy.typing import NDArray

from cryolive.engines import fft as pfft
from cryolive.engines.motion._align import _aligned, align_stack
from cryolive.engines.motion._checks import check_inputs
from cryolive.engines.motion._defects import DefectMap, corrected_frame, resolve_defects
from cryolive.engines.motion._field import PatchField, fit_field
from cryolive.engines.motion._fourier import (
    Complex,
    bin2,
    cropped_rfft2,
    even_fast_len,
    radial_frequency,
)
from cryolive.engines.motion._patches import group_starts, group_times, measure_patches
from cryolive.engines.motion._result import MotionResult, motion_lengths_a
from cryolive.engines.motion._sum import shift_and_sum
from cryolive.engines.motion._torch import alignment_spectra_torch

_ALIGN_PIXEL_A = 4.0
_ALIGN_GRID_PX = 1024
# A patch measurement (a patch over one group of frames) is expected to be noisier than one
# whole frame's by sqrt(electrons in a frame / electrons in the patch measurement); the
# whole-frame noise is measured on the movie itself (scatter of the frames about the smoothed
# trajectory), so the criterion follows the specimen's contrast, not only the dose. Patches
# are used where that predicted noise is at most MAX_PATCH_NOISE_PX and there are at least
# MIN_MEASUREMENTS_PER_COEFFICIENT measurements per coefficient of the field (18 per axis).
# Measured (docs/motioncorr.md, "Patches only where there is signal"): independent 1k x 24
# at 1 e/px, 5 x 5: predicted 0.47 px, a forced field moved tiles by 0.9-1.4 px of error;
# the simulator's 1k x 40: predicted 0.13 px, the field recovers 2 px of local motion to
# 0.07 px; independent 4k x 40, 5 x 5: spurious field 0.06 px.
MAX_PATCH_NOISE_PX = 0.3
MIN_MEASUREMENTS_PER_COEFFICIENT = 4
_FIELD_COEFFICIENTS = 18


def patch_grid_for_signal(
    requested: tuple[int, int],
    shape: tuple[int, int],
    *,
    frame_noise_px: float,
    n_frames: int,
    group: int,
) -> tuple[tuple[int, int] | None, str | None]:
    """The patch grid to use: ``requested`` (across x, across y), fewer patches, or None.

    ``frame_noise_px`` is the measurement noise (px) of one whole frame. A patch is
    measured on groups of ``group`` frames; its predicted noise is ``frame_noise_px *
    sqrt(frame area / (patch area * frames per group))`` (patch width 1.5 x frame / grid).
    The grid is shrunk (both counts down by one, keeping at least 1) until that is at most
    :data:`MAX_PATCH_NOISE_PX`; if the grid then has fewer than
    :data:`MIN_MEASUREMENTS_PER_COEFFICIENT` x 18 patch measurements, or is 1 x 1, or the
    movie has too few frames for two groups, only whole frames are aligned. Returns the grid
    and, when it is not the requested one, why, in words.
    """
    frames_per_group = max(1, min(group, n_frames))
    groups = n_frames // frames_per_group
    if groups < 2:
        return None, f"whole-frame only: {n_frames} frames, too few for two groups of {group}"

    def noise(gx: int, gy: int) -> float:
        width = min(1.5 * max(shape[0] / gy, shape[1] / gx), shape[0], shape[1])
        return frame_noise_px * float(np.sqrt(shape[0] * shape[1] / (width**2 * frames_per_group)))

    gx, gy = requested
    asked = noise(gx, gy)
    while noise(gx, gy) > MAX_PATCH_NOISE_PX and (gx, gy) != (1, 1):
        gx, gy = max(1, gx - 1), max(1, gy - 1)
    needed = MIN_MEASUREMENTS_PER_COEFFICIENT * _FIELD_COEFFICIENTS
    if (gx, gy) == (1, 1) or gx * gy * groups < needed:
        if tuple(requested) == (1, 1):
            return None, None
        return None, (
            f"whole-frame only: a patch of the {requested[0]} x {requested[1]} grid would be "
            f"measured to about {asked:.2f} px (at most {MAX_PATCH_NOISE_PX} px wanted), and "
            f"no smaller grid reaches that with at least {needed} patch measurements "
            f"({groups} groups of {frames_per_group} frames)"
        )
    if (gx, gy) == tuple(requested):
        return (gx, gy), None
    return (gx, gy), (
        f"{gx} x {gy} patches instead of {requested[0]} x {requested[1]}: a patch of "
        f"{requested[0]} x {requested[1]} would be measured to about {asked:.2f} px, one of "
        f"{gx} x {gy} to {noise(gx, gy):.2f} px (at most {MAX_PATCH_NOISE_PX} px wanted)"
    )


def _align_grid(
    shape: tuple[int, int], pixel_size_a: float, align_pixel_size_a: float
) -> tuple[tuple[int, int], bool]:
    """Shape of the Fourier-cropped alignment frames, and whether to bin 2 x 2 first."""
    ratio = max(1.0, align_pixel_size_a / pixel_size_a)
    out = (min(even_fast_len(round(shape[0] / ratio)), shape[0] // 2 * 2),
           min(even_fast_len(round(shape[1] / ratio)), shape[1] // 2 * 2))  # fmt: skip
    return out, ratio >= 2.0


def correct_motion(
    frames: NDArray[np.generic],
    *,
    pixel_size_a: float,
    dose_per_frame_e_per_a2: float,
    voltage_kv: float = 300.0,
    pre_exposure_e_per_a2: float = 0.0,
    gain: NDArray[np.floating] | None = None,
    defects: DefectMap | bool | None = True,
    patches: tuple[int, int] | None = (5, 5),
    bfactor_a2: float = 500.0,
    local_bfactor_a2: float = 150.0,
    patch_group: int = 4,
    align_pixel_size_a: float | None = None,
    max_shift_a: float = 200.0,
    max_iterations: int = 20,
    tolerance_px: float = 0.01,
    tile_px: int = 512,
    early_exposure_e_per_a2: float = 4.0,
    workers: int | None = None,
    device: str | None = None,
    smooth: bool = True,
) -> MotionResult:
    """Align the frames of a movie and sum them, plain and dose-weighted.

    Whole-frame alignment: every frame is cross-correlated with the sum of all the others
    (B-factor ``bfactor_a2``), its shift refined to a sub-pixel peak, the measured
    trajectory smoothed in time (penalised least squares, strength by generalised
    cross-validation; ``smooth``), and all frames moved by Fourier phase ramps, until no
    frame moves more than ``tolerance_px`` (px of the alignment frames) from one iteration
    to the next; the iterations run and whether they converged are in the result.
    Alignment runs on frames Fourier-cropped to about ``align_pixel_size_a`` (2 x 2 binned
    first when that is at least twice the pixel size). Local alignment repeats this on a
    grid of overlapping patches and fits a field quadratic in x, y and cubic in time to the
    patches' residual shifts; a patch grid whose patches would be measured too noisily is
    shrunk, down to whole-frame only (:func:`patch_grid_for_signal`). The sums are made at
    full size: each frame's tiles are moved by the shift at their centre with
    phase ramps and, for the dose-weighted sum, filtered by the exposure filter.

    Parameters
    ----------
    frames : (n, y, x) any real dtype
        Raw frames (counts), n >= 2. Not modified, never converted as a whole.
    pixel_size_a : float
        Pixel size (Å).
    dose_per_frame_e_per_a2 : float
        Exposure per frame (e/Å²).
    voltage_kv : float
        300 or 200 (kV), for the critical exposure.
    pre_exposure_e_per_a2 : float
        Exposure before the first frame (e/Å²).
    gain : (y, x) float or None
        Multiplicative gain in the movies' orientation (see :func:`detect_gain_orientation`).
    defects : DefectMap, True or False/None
        Pixels to replace; True finds hot and dead pixels from the movie itself.
    patches : (across x, across y) or None
        Local alignment patch grid (MotionCor2's order: 7 x 5 for a K3's 5760 x 4092 frames);
        None aligns whole frames only.
    bfactor_a2, local_bfactor_a2 : float
        B-factors (Å²) applied to each frame for whole-frame and patch alignment.
    patch_group : int
        Consecutive frames summed for patch alignment (more signal per measurement).
    align_pixel_size_a : float or None
        Pixel size (Å) of the alignment frames; None: 4 Å, or finer where that leaves fewer
        than 1024 px across (the alignment grid stays at most 1024 px wide, or the frame's
        own size when that is smaller).
    max_shift_a : float
        Largest whole-frame shift looked for (Å).
    max_iterations : int
        Refinement iterations at most.
    tolerance_px : float
        Convergence: the largest shift update (px of the alignment frames) to stop at.
    tile_px : int
        Width (px) of the tiles within which a frame moves rigidly in the sums.
    early_exposure_e_per_a2 : float
        Exposure (e/Å²) up to which motion counts as early.
    workers : int or None
        FFT threads (None: all CPUs).
    device : str or None
        A PyTorch device (``"cuda"``, ``"cpu"`` …): the full-size stages (corrected frames,
        alignment spectra, the sums) run there; the alignment on cropped grids stays numpy.
        None (default): numpy/scipy only. Needs PyTorch installed.

    Returns
    -------
    MotionResult

    Raises
    ------
    UnusableMovieError
        NaN/inf pixels, fewer than 2 frames, a blank movie, a gain of another shape.
    ValueError
        A parameter out of range.

    References
    ----------
    Grant T, Grigorieff N (2015) eLife 4:e06980. doi:10.7554/eLife.06980 (exposure filter).
    Zheng SQ et al. (2017) Nat Methods 14:331. doi:10.1038/nmeth.4193 (patch deformation model).
    """
    check_inputs(
        frames, gain, pixel_size_a=pixel_size_a, patches=patches, tile_px=tile_px,
        dose_per_frame_e_per_a2=dose_per_frame_e_per_a2, max_iterations=max_iterations,
    )  # fmt: skip
    if not tolerance_px > 0:
        raise ValueError(f"tolerance_px: must be positive, got {tolerance_px}")
    workers = workers or os.cpu_count() or 1
    n, ny, nx = frames.shape
    gain32 = None if gain is None else np.asarray(gain, dtype=np.float32)
    defect_map = resolve_defects(frames, gain32, defects)

    if align_pixel_size_a is None:
        align_pixel_size_a = min(_ALIGN_PIXEL_A, pixel_size_a * max(ny, nx) / _ALIGN_GRID_PX)
    (ay, ax), binned = _align_grid((ny, nx), pixel_size_a, align_pixel_size_a)
    scale = np.array([ny / ay, nx / ax])
    align_pixel = pixel_size_a * float(scale.mean())
    if device is not None:
        spectra = alignment_spectra_torch(frames, gain=gain32, defects=defect_map,
                                          binned=binned, shape=(ay, ax), device=device)  # fmt: skip
    else:
        spectra = np.empty((n, ay, ax // 2 + 1), dtype=np.complex64)
        buffer = np.empty((ny, nx), dtype=np.float32)
        for t in range(n):
            corrected_frame(frames[t], gain=gain32, defects=defect_map, out=buffer)
            frame = bin2(buffer) if binned else buffer
            spectra[t] = cropped_rfft2(frame, (ay, ax), workers=workers)
    k = radial_frequency((ay, ax), align_pixel)
    weight = np.exp(-bfactor_a2 * k * k / 2.0).astype(np.float32)
    found = align_stack(spectra, (ay, ax), weight=weight, search_px=max_shift_a / align_pixel,
                        max_iterations=max_iterations, tolerance_px=tolerance_px,
                        smooth=smooth, workers=workers)  # fmt: skip
    global_px = found.shifts * scale
    field, patch_note = None, None
    if patches is not None:
        patches, patch_note = patch_grid_for_signal(
            patches, (ny, nx), frame_noise_px=found.scatter_px * float(scale.mean()),
            n_frames=n, group=patch_group,
        )  # fmt: skip
    if patches is not None:
        field = _local_field(spectra, found.shifts, patches, align_pixel=align_pixel,
                             scale=scale, shape=(ny, nx), bfactor_a2=local_bfactor_a2,
                             group=patch_group, workers=workers)  # fmt: skip
    del spectra  # the sums work on the full-size frames: free the alignment spectra first
    plain, weighted = shift_and_sum(
        frames, global_px, pixel_size_a=pixel_size_a,
        dose_per_frame_e_per_a2=dose_per_frame_e_per_a2, voltage_kv=voltage_kv,
        pre_exposure_e_per_a2=pre_exposure_e_per_a2, gain=gain32, defects=defect_map,
        field=field, tile_px=tile_px, workers=workers, device=device,
    )  # fmt: skip
    shifts = global_px - global_px[0]
    total_a, early_a, late_a = motion_lengths_a(
        shifts, pixel_size_a=pixel_size_a, dose_per_frame_e_per_a2=dose_per_frame_e_per_a2,
        pre_exposure_e_per_a2=pre_exposure_e_per_a2,
        early_exposure_e_per_a2=early_exposure_e_per_a2,
    )  # fmt: skip
    for array in (shifts, plain, weighted):
        array.flags.writeable = False
    return MotionResult(
        shifts_px=shifts, pixel_size_a=pixel_size_a,
        dose_per_frame_e_per_a2=dose_per_frame_e_per_a2,
        pre_exposure_e_per_a2=pre_exposure_e_per_a2, total_motion_a=total_a,
        early_motion_a=early_a, late_motion_a=late_a, dose_weighted_sum=weighted,
        plain_sum=plain, patch_field=field, defects=defect_map, iterations=found.iterations,
        converged=found.residual_px <= tolerance_px, residual_px=found.residual_px,
        patches_used=patches, patch_note=patch_note,
    )  # fmt: skip


def _local_field(
    spectra: Complex,
    shifts: NDArray[np.float64],
    patches: tuple[int, int],
    *,
    align_pixel: float,
    scale: NDArray[np.float64],
    shape: tuple[int, int],
    bfactor_a2: float,
    group: int,
    workers: int,
) -> PatchField:
    """Patch residuals on the globally aligned alignment frames, fitted as a field (full px)."""
    n, ay = spectra.shape[:2]
    ax = (spectra.shape[2] - 1) * 2
    starts = group_starts(n, group)
    ends = np.append(starts[1:], n)
    groups = np.empty((len(starts), ay, ax), dtype=np.float32)
    for g, (start, end) in enumerate(zip(starts, ends, strict=True)):
        summed = _aligned(spectra[start:end], shifts[start:end], (ay, ax)).sum(axis=0)
        groups[g] = pfft.irfft2(summed, s=(ay, ax), workers=workers)
    measured, cy, cx = measure_patches(groups, (patches[1], patches[0]),
                                       pixel_size_a=align_pixel, bfactor_a2=bfactor_a2,
                                       search_px=3.0, workers=workers)  # fmt: skip
    return fit_field(measured * scale, cy * scale[0], cx * scale[1], shape_px=shape,
                     times=group_times(n, group), n_frames=n)  # fmt: skip
