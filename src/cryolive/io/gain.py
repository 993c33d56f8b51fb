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

__all__ = [
    "DM_SUFFIXES",
    "GAIN_SUFFIXES",
    "find_gain_reference",
    "gain_reference_candidates",
    "read_gain",
]

GAIN_SUFFIXES = (".mrc", ".tif", ".tiff", ".gain")
# Gatan Digital Micrograph, as SerialEM and Gatan's software save K2/K3 references. No reader of
# DM3/DM4 is among cryolive's dependencies: such a file is found, and refused with a message
# saying how to convert it.
DM_SUFFIXES = (".dm4", ".dm3")
# SerialEM names its references by the mode they were taken in: counting or super-resolution
_SERIALEM_PREFIXES = ("superref_", "countref_")


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
    if suffix in DM_SUFFIXES:
        raise GainReadError(
            path,
            "a Digital Micrograph gain reference, which cryolive cannot read: convert it to MRC "
            f"(IMOD: dm2mrc {path.name} {path.stem}.mrc) and leave the .mrc beside it",
        )
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


def gain_reference_candidates(folder: Path | str) -> list[Path]:
    """The files in ``folder`` (not below it) named like a gain reference: SerialEM's
    ``SuperRef_*`` / ``CountRef_*`` (``.dm4``, ``.dm3``, ``.mrc``, TIFF) and any file whose name
    contains ``gain`` (EPU's ``*gain*.tiff``, ``.mrc``, Falcon EER's ``.gain``; also ``.dm4``),
    matched without regard to case. A folder that does not exist has none."""
    folder = Path(folder)
    try:
        entries = list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for path in entries:
        name, suffix = path.name.lower(), path.suffix.lower()
        if suffix not in GAIN_SUFFIXES + DM_SUFFIXES or not path.is_file():
            continue
        if name.startswith(_SERIALEM_PREFIXES) or "gain" in name:
            found.append(path)
    return sorted(found)


def find_gain_reference(
    folder: Path | str, *more: Path | str, super_resolution: bool | None = None
) -> Path | None:
    """The gain reference for the movies of ``folder`` (and ``more`` folders, searched alike):
    None when there is none.

    Parameters
    ----------
    folder, more
        Where to look: SerialEM writes its reference beside the frames, EPU in the session's
        or the raw folder.
    super_resolution
        The movies' mode, where known: True prefers SerialEM's ``SuperRef_*``, False its
        ``CountRef_*``.

    Notes
    -----
    Among several, in this order: the one of the movies' mode; a readable one (MRC, TIFF,
    ``.gain``) over a Digital Micrograph file (a ``.dm4`` converted to ``.mrc`` beside it is
    used); the newest (a reference taken for this session replaces an older one); by name.
    """
    found = [p for f in (folder, *more) for p in gain_reference_candidates(f)]
    if not found:
        return None
    wanted = None if super_resolution is None else ("countref_", "superref_")[super_resolution]

    def rank(path: Path) -> tuple[bool, bool, float, str]:
        name = path.name.lower()
        other_mode = (
            wanted is not None
            and name.startswith(_SERIALEM_PREFIXES)
            and not name.startswith(wanted)
        )
        try:
            mtime = path.stat().st_mtime
        except OSError:
            mtime = 0.0
        return (
            other_mode,
            path.suffix.lower() in DM_SUFFIXES,
            -mtime,
            path.name,
        )

    return min(found, key=rank)
