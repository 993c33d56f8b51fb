"""The PNG writer: a planted image is decoded back exactly by an independent reader."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from cryolive.io.png import png_bytes, write_png


def _decode(data: bytes) -> np.ndarray:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, size = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body)
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert (depth, colour) == (8, 0)
            size = (height, width)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert size is not None
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(size[0], size[1] + 1)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:]


def test_round_trip_of_floats_and_bytes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (37, 53), dtype=np.uint8)
    np.testing.assert_array_equal(_decode(png_bytes(grey)), grey)
    ramp = np.linspace(-1.0, 3.0, 5)[None, :].repeat(2, axis=0)
    decoded = _decode(png_bytes(ramp, low=0.0, high=2.0))
    np.testing.assert_array_equal(decoded[0], [0, 0, 128, 255, 255])
    write_png(tmp_path / "x.png", grey)
    np.testing.assert_array_equal(_decode((tmp_path / "x.png").read_bytes()), grey)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="image"):
        png_bytes(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="image"):
        png_bytes(np.zeros((0, 4)))
    with pytest.raises(ValueError, match="high"):
        png_bytes(np.zeros((2, 2)), low=1.0, high=1.0)
