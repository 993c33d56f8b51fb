"""Write movies progressively (TIFF as EPU writes it, MRC), pacing the write over time."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import mrcfile
import numpy as np
import tifffile
from mrcfile.dtypes import HEADER_DTYPE
from mrcfile.utils import dtype_from_mode, mode_from_dtype


class Pacer:
    """Spread a file's writing over ``duration_s`` seconds (0: as fast as possible)."""

    def __init__(self, duration_s: float) -> None:
        if duration_s < 0:
            raise ValueError(f"duration_s: must be non-negative, got {duration_s}")
        self.duration_s = duration_s
        self._start = time.monotonic()

    def wait(self, done_fraction: float) -> None:
        """Sleep until ``done_fraction`` of the duration has passed since construction."""
        if self.duration_s <= 0:
            return
        due = self._start + self.duration_s * done_fraction
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def write_tiff_movie(
    path: Path, frames: Iterable[np.ndarray], *, n_frames: int, pacer: Pacer
) -> None:
    """One LZW-compressed page per frame, flushed after each, as EPU's ``_fractions.tiff``."""
    with path.open("wb") as fh, tifffile.TiffWriter(fh) as tif:
        for index, frame in enumerate(frames):
            tif.write(frame, compression="lzw", photometric="minisblack", metadata=None)
            fh.flush()
            pacer.wait((index + 1) / n_frames)


def _mrc_header(shape: tuple[int, int, int], dtype: np.dtype, pixel_size_a: float) -> bytes:
    n, ny, nx = shape
    header = np.zeros((), dtype=HEADER_DTYPE)
    header["nx"], header["ny"], header["nz"] = nx, ny, n
    header["mode"] = mode_from_dtype(dtype)
    header["mx"], header["my"], header["mz"] = nx, ny, n
    header["cella"] = (nx * pixel_size_a, ny * pixel_size_a, n * pixel_size_a)
    header["cellb"] = (90.0, 90.0, 90.0)
    header["mapc"], header["mapr"], header["maps"] = 1, 2, 3
    header["ispg"] = 0
    header["map"] = b"MAP "
    header["machst"] = (0x44, 0x44, 0, 0)
    header["nversion"] = 20141
    header["rms"] = -1.0
    header["dmin"], header["dmax"], header["dmean"] = 0.0, -1.0, -2.0
    header["nlabl"] = 1
    labels = np.zeros(10, dtype="S80")
    labels[0] = b"cryolive simulate"
    header["label"] = labels
    return header.tobytes()


def write_mrc_movie(
    path: Path,
    frames: Iterable[np.ndarray],
    *,
    shape: tuple[int, int, int],
    dtype: np.dtype,
    pixel_size_a: float,
    pacer: Pacer,
) -> None:
    """An MRC2014 stack: the header (with the frame count of ``shape``), then each frame.

    Data are stored in the MRC mode mrcfile assigns to ``dtype`` (uint8 counts as uint16).
    """
    stored = dtype_from_mode(mode_from_dtype(np.dtype(dtype))).newbyteorder("<")
    with path.open("wb") as fh:
        fh.write(_mrc_header(shape, np.dtype(dtype), pixel_size_a))
        for index, frame in enumerate(frames):
            fh.write(np.ascontiguousarray(frame, dtype=stored).tobytes())
            fh.flush()
            pacer.wait((index + 1) / shape[0])


def write_gain_reference(path: Path, gain: np.ndarray, *, pixel_size_a: float) -> None:
    """Write a (y, x) float32 gain reference as MRC (``.mrc``) or TIFF (``.gain``/``.tif``)."""
    if path.suffix == ".mrc":
        with mrcfile.new(path, overwrite=True) as mrc:
            mrc.set_data(gain.astype(np.float32))
            mrc.voxel_size = pixel_size_a
    else:
        tifffile.imwrite(path, gain.astype(np.float32), photometric="minisblack", metadata=None)
