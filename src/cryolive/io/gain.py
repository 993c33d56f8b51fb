"""Read a gain reference and bring it into the orientation of the movies.

Cameras and acquisition software often store the gain reference rotated and/or mirrored with
respect to the movies. :class:`GainTransform` names that relation: the gain reference that
matches the movies is ``transform.apply(gain_as_stored)``: first ``np.rot90`` by
``rotate_deg`` (counter-clockwise as displayed with row 0 at the top), then the flip.
A counted movie is gain-corrected by multiplying each frame by the matched gain.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import mrcfile
import numpy as np
import tifffile

from cryolive.io._errors import GainReadError, check_file

Flip = Literal["none", "x", "y"]
GAIN_SUFFIXES = (".mrc", ".tif", ".tiff", ".gain")


@dataclass(frozen=True)
class GainTransform:
    """How the stored gain reference relates to the movies.

    Attributes
    ----------
    rotate_deg
        0, 90, 180 or 270: counter-clockwise rotation (``np.rot90``), applied first.
    flip
        ``"none"``, ``"x"`` (mirror left-right, ``np.fliplr``) or ``"y"`` (mirror up-down),
        applied after the rotation.
    """

    rotate_deg: int = 0
    flip: Flip = "none"

    def __post_init__(self) -> None:
        if self.rotate_deg not in (0, 90, 180, 270):
            raise ValueError(f"rotate_deg: must be 0, 90, 180 or 270, got {self.rotate_deg}")
        if self.flip not in ("none", "x", "y"):
            raise ValueError(f"flip: must be 'none', 'x' or 'y', got {self.flip!r}")

    def apply(self, image: np.ndarray) -> np.ndarray:
        """Stored orientation -> movie orientation. ``image``: (y, x); dtype kept."""
        out = np.rot90(image, self.rotate_deg // 90)
        if self.flip == "x":
            out = out[:, ::-1]
        elif self.flip == "y":
            out = out[::-1, :]
        return np.ascontiguousarray(out)

    def invert(self, image: np.ndarray) -> np.ndarray:
        """Movie orientation -> stored orientation (the inverse of :meth:`apply`)."""
        out = image
        if self.flip == "x":
            out = out[:, ::-1]
        elif self.flip == "y":
            out = out[::-1, :]
        return np.ascontiguousarray(np.rot90(out, -(self.rotate_deg // 90)))

    @classmethod
    def all(cls) -> list[GainTransform]:
        """The 8 distinct rotations/flips (the dihedral group of the square)."""
        return [cls(r, f) for r in (0, 90, 180, 270) for f in ("none", "x")]


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
