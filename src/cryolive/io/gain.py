"""Read a gain reference as stored.

Cameras and acquisition software often store the gain reference rotated and/or mirrored with
respect to the movies. :class:`cryolive.engines.motion.GainTransform` names that relation (it is
array arithmetic, so it lives with the motion engine that detects it): the gain reference that
matches the movies is ``transform.apply(gain_as_stored)``: first ``np.rot90`` by
``rotate_deg`` (counter-clockwise as displayed with row 0 at the top), then the flip.
A counted movie is gain-corrected by multiplying each frame by the matched gain.
"""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import tifffile

from cryolive.io._errors import GainReadError, check_file

__all__ = ["GAIN_SUFFIXES", "read_gain"]

GAIN_SUFFIXES = (".mrc", ".tif", ".tiff", ".gain")


def read_gain(path: Path | str) -> np.ndarray:
    """Read a gain reference as stored.

    Parameters
    ----------
    path
        ``.mrc`` or TIFF (``.tif``, ``.tiff``, ``.gain``) with one 2D float image.

    Returns
    -------
    gain : (y, x) float32
        Multiplicative gain (a counted frame times the matched gain is flat-field corrected).

    Raises
    ------
    GainReadError
        Missing, empty, unreadable, truncated or not a finite positive 2D image.
    """
    path = Path(path)
    check_file(path, GainReadError)
    suffix = path.suffix.lower()
    try:
        if suffix == ".mrc":
            with mrcfile.open(path, permissive=False, mode="r") as mrc:
                data = np.asarray(mrc.data)
        elif suffix in (".tif", ".tiff", ".gain"):
            data = tifffile.imread(path)
        else:
            raise GainReadError(path, f"unknown gain suffix {suffix!r}; expected {GAIN_SUFFIXES}")
    except GainReadError:
        raise
    except Exception as exc:  # mrcfile/tifffile raise several types for damaged files
        raise GainReadError(path, f"cannot be read as a gain reference: {exc}") from exc
    if data.ndim == 3 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 2:
        raise GainReadError(path, f"expected one 2D image, got shape {data.shape}")
    gain = data.astype(np.float32, copy=True)
    if not np.all(np.isfinite(gain)):
        raise GainReadError(path, "contains NaN or infinite values")
    if gain.mean() <= 0:
        raise GainReadError(path, "mean gain is not positive")
    return gain
