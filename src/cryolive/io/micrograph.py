"""Reading a single micrograph (MRC) for the per-micrograph stages."""

from __future__ import annotations

import warnings
from pathlib import Path

import mrcfile
import numpy as np
from numpy.typing import NDArray

from cryolive.errors import BadInputError


class MicrographReadError(BadInputError):
    """A micrograph file that cannot be read as one 2D image; the message says why."""


def read_micrograph(path: Path) -> tuple[NDArray[np.float32], float | None]:
    """Read a 2D MRC micrograph.

    Returns
    -------
    image : (y, x) float32
    pixel_size_a : float or None
        From the header's voxel size (Å), None when the header leaves it at 0.

    Raises
    ------
    MicrographReadError
        Missing, truncated or corrupt file, or not a single 2D image.
    """
    if not path.is_file():
        raise MicrographReadError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # mapped, not read: the float32 copy below is then the only one in memory
            with mrcfile.mmap(path, permissive=True, mode="r") as mrc:
                data = mrc.data
                if data is None:
                    raise MicrographReadError(f"{path}: not an MRC file (no readable header)")
                image = np.array(data, dtype=np.float32)
                size = float(mrc.voxel_size.x)
    except (OSError, ValueError, EOFError) as exc:
        if isinstance(exc, MicrographReadError):
            raise
        raise MicrographReadError(f"{path}: unreadable MRC ({exc})") from exc
    if image.ndim == 3 and image.shape[0] == 1:
        image = image[0]
    if image.ndim != 2:
        raise MicrographReadError(f"{path}: expected one 2D image, got shape {image.shape}")
    return image, (size if size > 0 else None)
