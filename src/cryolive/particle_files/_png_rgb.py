"""An 8-bit RGB PNG writer (zlib; no imaging package), for pick overlays."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from numpy.typing import NDArray


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_rgb_png(path: Path, image: NDArray[np.uint8]) -> None:
    """Write ``image`` (y, x, 3) uint8 to ``path`` as an RGB PNG."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or image.size == 0:
        raise ValueError(
            f"image: must be non-empty (y, x, 3) uint8, got {image.shape} {image.dtype}"
        )
    rows = np.zeros((image.shape[0], 1 + 3 * image.shape[1]), dtype=np.uint8)
    rows[:, 1:] = image.reshape(image.shape[0], -1)  # filter type 0 in front of every row
    header = struct.pack(">IIBBBBB", image.shape[1], image.shape[0], 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + _chunk(b"IEND", b"")
    )
