"""The one PNG writer of cryolive: 8-bit greyscale and RGB (zlib from the standard library; no
imaging package), and the percentile stretch that turns a float image into 8-bit grey.

Every image cryolive writes goes through here: CTF diagnostics and spectra, motion-correction
previews, 2D class averages and montages (grey), pick overlays (RGB).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_GREY, _RGB = 0, 2  # PNG colour types


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _encode(pixels: NDArray[np.uint8], *, width: int, colour_type: int) -> bytes:
    """PNG bytes of ``pixels`` (rows, width * samples per pixel) uint8, 8 bits per sample."""
    rows = np.zeros((pixels.shape[0], pixels.shape[1] + 1), dtype=np.uint8)
    rows[:, 1:] = pixels  # filter type 0 (None) in front of every row
    header = struct.pack(">IIBBBBB", width, pixels.shape[0], 8, colour_type, 0, 0, 0)
    return (
        _SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + _chunk(b"IEND", b"")
    )


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
        grey = np.asarray(image, dtype=np.uint8)
    else:
        if not high > low:
            raise ValueError(f"high ({high}) must exceed low ({low})")
        values = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=low)
        grey = np.clip(np.rint((values - low) / (high - low) * 255.0), 0, 255).astype(np.uint8)
    return _encode(grey, width=grey.shape[1], colour_type=_GREY)


def rgb_png_bytes(image: NDArray[np.uint8]) -> bytes:
    """Encode ``image`` (y, x, 3) uint8 as an RGB PNG."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or image.size == 0:
        raise ValueError(
            f"image: must be non-empty (y, x, 3) uint8, got {image.shape} {image.dtype}"
        )
    return _encode(image.reshape(image.shape[0], -1), width=image.shape[1], colour_type=_RGB)


def write_png(
    path: Path, image: NDArray[np.generic], *, low: float = 0.0, high: float = 1.0
) -> None:
    """Write ``image`` to ``path`` as a greyscale PNG (see :func:`png_bytes`)."""
    path.write_bytes(png_bytes(image, low=low, high=high))


def write_rgb_png(path: Path, image: NDArray[np.uint8]) -> None:
    """Write ``image`` (y, x, 3) uint8 to ``path`` as an RGB PNG (see :func:`rgb_png_bytes`)."""
    path.write_bytes(rgb_png_bytes(image))


def to_uint8(
    image: NDArray[np.floating], *, low_pct: float = 1.0, high_pct: float = 99.0
) -> NDArray[np.uint8]:
    """Map ``image`` linearly so its ``low_pct``/``high_pct`` percentiles are black/white."""
    low, high = np.percentile(image, [low_pct, high_pct])
    scaled = (np.asarray(image, dtype=np.float32) - low) / max(float(high - low), 1e-12)
    return np.asarray(np.clip(scaled * 255.0 + 0.5, 0, 255), dtype=np.uint8)
