"""A minimal 8-bit greyscale PNG encoder (zlib from the standard library)."""

from __future__ import annotations

import struct
import zlib

import numpy as np
from numpy.typing import NDArray


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def grey_png(image: NDArray[np.uint8]) -> bytes:
    """PNG bytes of a (y, x) uint8 image (colour type 0, bit depth 8, no filter)."""
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"image: need (y, x) uint8, got {image.shape} {image.dtype}")
    height, width = image.shape
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = np.empty((height, width + 1), dtype=np.uint8)
    rows[:, 0] = 0  # filter type "none" on every row
    rows[:, 1:] = image
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + _chunk(b"IEND", b"")
    )


def to_uint8(
    image: NDArray[np.floating], *, low_pct: float = 1.0, high_pct: float = 99.0
) -> NDArray[np.uint8]:
    """Map ``image`` linearly so its ``low_pct``/``high_pct`` percentiles are black/white."""
    low, high = np.percentile(image, [low_pct, high_pct])
    scaled = (np.asarray(image, dtype=np.float32) - low) / max(float(high - low), 1e-12)
    return np.asarray(np.clip(scaled * 255.0 + 0.5, 0, 255), dtype=np.uint8)
