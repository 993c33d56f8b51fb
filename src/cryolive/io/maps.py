"""3D maps as MRC files (mode 2, voxel size in the header, origin 0), as RELION reads them."""

from __future__ import annotations

import warnings
from pathlib import Path

import mrcfile
import numpy as np
from numpy.typing import NDArray

from cryolive.errors import BadInputError


class MapFileError(BadInputError):
    """A map that cannot be read: says which file and why."""


def write_map(path: Path, volume: NDArray[np.floating], *, pixel_size_a: float) -> Path:
    """Write a (b, b, b) map [z, y, x] with its voxel size; return the path."""
    v = np.asarray(volume, dtype=np.float32)
    if v.ndim != 3:
        raise ValueError(f"volume: must be 3D, got {v.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.ascontiguousarray(v))
        mrc.set_volume()
        mrc.voxel_size = pixel_size_a
    return path


def read_map(path: Path) -> tuple[NDArray[np.float32], float]:
    """Read a cubic map: (volume [z, y, x] float32, voxel size Å). Raises MapFileError."""
    path = Path(path)
    if not path.is_file():
        raise MapFileError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            # permissive reading warns of odd headers; what matters is checked below
            warnings.simplefilter("ignore", RuntimeWarning)
            mrc = mrcfile.open(path, mode="r", permissive=True)
        with mrc:
            data = mrc.data
            voxel = float(mrc.voxel_size.x)
            if data is None:
                raise MapFileError(f"{path}: holds no data")
            volume = np.array(data, dtype=np.float32)
    except (OSError, EOFError, ValueError) as exc:
        raise MapFileError(f"{path}: not a readable MRC map ({exc})") from exc
    if volume.ndim != 3 or len(set(volume.shape)) != 1:
        raise MapFileError(f"{path}: not a cubic 3D map, shape {volume.shape}")
    if not np.isfinite(volume).all():
        raise MapFileError(f"{path}: holds non-finite values")
    return volume, voxel
