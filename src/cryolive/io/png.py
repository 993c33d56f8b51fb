"""A minimal 8-bit greyscale PNG writer (zlib from the standard library; no imaging package).

Diagnostic images for the web (CTF fits, spectra) need nothing more than this.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(image: NDArray[np.generic], *, low: float = 0.0, high: float = 1.0) -> bytes:
    """Encode ``image`` as a greyscale PNG.

    Parameters
    ----------
    image : (y, x) float or uint8
        Floats are mapped linearly from [low, high] to 0-255 (clipped); uint8 is written as is.
    low, high : float
        Values shown black and white.
    """
    if image.ndim != 2 or min(image.shape) < 1:
        raise ValueError(f"image must be a non-empty 2D array, got shape {image.shape}")
    if image.dtype == np.uint8:
        grey = np.asarray(image)
    else:
        if not high > low:
            raise ValueError(f"high ({high}) must exceed low ({low})")
        values = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=low)
        grey = np.clip(np.rint((values - low) / (high - low) * 255.0), 0, 255).astype(np.uint8)
    rows = np.zeros((grey.shape[0], grey.shape[1] + 1), dtype=np.uint8)
    rows[:, 1:] = grey  # filter type 0 (None) in front of every row
    header = struct.pack(">IIBBBBB", grey.shape[1], grey.shape[0], 8, 0, 0, 0, 0)
    return (
        _SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + _chunk(b"IEND", b"")
    )


def write_png(
    path: Path, image: NDArray[np.generic], *, low: float = 0.0, high: float = 1.0
) -> None:
    """Write ``image`` to ``path`` as a greyscale PNG (see :func:`png_bytes`)."""
    path.write_bytes(png_bytes(image, low=low, high=high))
