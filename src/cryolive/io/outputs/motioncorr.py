"""What motion correction writes per movie: the sums (MRC), the drift (JSON for the web's plot),
a result JSON, a snapshot and a power spectrum (PNG)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np
from numpy.typing import NDArray

from cryolive.engines import fft as pfft
from cryolive.engines.motion import MotionResult
from cryolive.io.png import png_bytes, to_uint8

SNAPSHOT_PX = 512
SPECTRUM_PX = 512


@dataclass(frozen=True)
class MotionFiles:
    """Paths written for one movie (the MotionCorrection row's *FullPath columns)."""

    micrograph: Path  # dose-weighted sum
    micrograph_plain: Path
    drift: Path
    result: Path
    snapshot: Path
    spectrum: Path


def _binned(image: NDArray[np.float32], target: int) -> NDArray[np.float32]:
    factor = max(1, int(np.ceil(max(image.shape) / target)))
    ny, nx = image.shape[0] // factor * factor, image.shape[1] // factor * factor
    blocks = image[:ny, :nx].reshape(ny // factor, factor, nx // factor, factor)
    return np.asarray(blocks.mean(axis=(1, 3)), dtype=np.float32)


def power_spectrum_image(
    image: NDArray[np.float32], *, size: int = SPECTRUM_PX
) -> NDArray[np.uint8]:
    """Log power spectrum, origin in the middle, averaged from overlapping ``size`` boxes."""
    box = min(size, image.shape[0] // 2 * 2, image.shape[1] // 2 * 2)
    step = box // 2
    total = np.zeros((box, box), dtype=np.float64)
    window = np.outer(np.hanning(box), np.hanning(box)).astype(np.float32)
    count = 0
    for y in range(0, image.shape[0] - box + 1, step):
        for x in range(0, image.shape[1] - box + 1, step):
            tile = image[y : y + box, x : x + box]
            total += np.abs(pfft.fft2((tile - tile.mean()) * window)) ** 2
            count += 1
    logged = np.log1p(np.fft.fftshift(total / max(count, 1)))
    return to_uint8(logged, low_pct=5.0, high_pct=99.8)


def _write_mrc(path: Path, image: NDArray[np.float32], pixel_size_a: float) -> None:
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.asarray(image, dtype=np.float32))
        mrc.voxel_size = pixel_size_a


def write_motion_outputs(
    result: MotionResult, out_dir: Path, stem: str, *, extra: dict[str, object] | None = None
) -> MotionFiles:
    """Write the files of one motion-corrected movie into ``out_dir``.

    Files: ``<stem>.mrc`` (dose-weighted sum), ``<stem>_noDW.mrc`` (plain sum), both with
    the pixel size in the header; ``<stem>.drift.json`` (``{"data": [{"x": [...], "y":
    [...]}]}``, px relative to frame 0); ``<stem>.motion.json`` (motion in Å, shifts in px and
    Å, settings in ``extra``); ``<stem>.snapshot.png``; ``<stem>.spectrum.png``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    files = MotionFiles(
        micrograph=out_dir / f"{stem}.mrc",
        micrograph_plain=out_dir / f"{stem}_noDW.mrc",
        drift=out_dir / f"{stem}.drift.json",
        result=out_dir / f"{stem}.motion.json",
        snapshot=out_dir / f"{stem}.snapshot.png",
        spectrum=out_dir / f"{stem}.spectrum.png",
    )
    _write_mrc(files.micrograph, result.dose_weighted_sum, result.pixel_size_a)
    _write_mrc(files.micrograph_plain, result.plain_sum, result.pixel_size_a)
    dy, dx = result.shifts_px[:, 0], result.shifts_px[:, 1]
    drift = {"data": [{"x": np.round(dx, 4).tolist(), "y": np.round(dy, 4).tolist()}]}
    files.drift.write_text(json.dumps(drift))
    field = result.patch_field
    summary: dict[str, object] = {
        "pixel_size_a": result.pixel_size_a,
        "n_frames": result.n_frames,
        "dose_per_frame_e_per_a2": result.dose_per_frame_e_per_a2,
        "pre_exposure_e_per_a2": result.pre_exposure_e_per_a2,
        "total_motion_a": round(result.total_motion_a, 4),
        "early_motion_a": round(result.early_motion_a, 4),
        "late_motion_a": round(result.late_motion_a, 4),
        "average_motion_per_frame_a": round(result.total_motion_a / max(result.n_frames - 1, 1), 4),
        "shifts_x_px": np.round(dx, 4).tolist(),
        "shifts_y_px": np.round(dy, 4).tolist(),
        "shifts_x_a": np.round(dx * result.pixel_size_a, 4).tolist(),
        "shifts_y_a": np.round(dy * result.pixel_size_a, 4).tolist(),
        "patches_x": None if field is None else len(field.centres_x_px),
        "patches_y": None if field is None else len(field.centres_y_px),
        "patch_fit_rms_px": None if field is None else round(field.rms_misfit_px, 4),
        "patch_field_shrink": None if field is None else round(field.shrink, 4),
        "hot_pixels": 0 if result.defects is None else result.defects.n_hot,
        "dead_pixels": 0 if result.defects is None else result.defects.n_dead,
        "iterations": result.iterations,
        "converged": result.converged,
        "residual_px": round(result.residual_px, 5),
        "patches_used": None if result.patches_used is None else list(result.patches_used),
        "patch_note": result.patch_note,
        "files": {k: str(v) for k, v in vars(files).items()},
        **(extra or {}),
    }
    files.result.write_text(json.dumps(summary, indent=1))
    files.snapshot.write_bytes(png_bytes(to_uint8(_binned(result.dose_weighted_sum, SNAPSHOT_PX))))
    files.spectrum.write_bytes(png_bytes(power_spectrum_image(result.plain_sum)))
    return files
