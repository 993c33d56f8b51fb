"""The one PNG writer: planted grey and RGB images are decoded back exactly by independent
readers (a minimal decoder here and imagecodecs'), and the percentile stretch hits its marks."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import imagecodecs
import numpy as np
import pytest

from cryolive.io.png import png_bytes, rgb_png_bytes, to_uint8, write_png, write_rgb_png


def _decode(data: bytes, *, colour: int = 0) -> np.ndarray:
    """Pixels of an unfiltered 8-bit PNG: (y, x) for grey (colour 0), (y, x, 3) for RGB (2)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    channels = {0: 1, 2: 3}[colour]
    pos, idat, size = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body)
        if kind == b"IHDR":
            width, height, depth, colour_type = struct.unpack(">IIBB", body[:10])
            assert (depth, colour_type) == (8, colour)
            size = (height, width)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert size is not None
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(size[0], channels * size[1] + 1)
    assert (raw[:, 0] == 0).all()
    pixels = raw[:, 1:]
    return pixels if channels == 1 else pixels.reshape(size[0], size[1], 3)


def test_round_trip_of_floats_and_bytes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (37, 53), dtype=np.uint8)
    np.testing.assert_array_equal(_decode(png_bytes(grey)), grey)
    ramp = np.linspace(-1.0, 3.0, 5)[None, :].repeat(2, axis=0)
    decoded = _decode(png_bytes(ramp, low=0.0, high=2.0))
    np.testing.assert_array_equal(decoded[0], [0, 0, 128, 255, 255])
    write_png(tmp_path / "x.png", grey)
    np.testing.assert_array_equal(_decode((tmp_path / "x.png").read_bytes()), grey)


def test_grey_and_rgb_round_trip_through_another_decoder(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 256, size=(37, 53), dtype=np.uint8)
    np.testing.assert_array_equal(imagecodecs.png_decode(png_bytes(grey)), grey)
    rgb = rng.integers(0, 256, size=(29, 41, 3), dtype=np.uint8)
    np.testing.assert_array_equal(imagecodecs.png_decode(rgb_png_bytes(rgb)), rgb)
    write_rgb_png(tmp_path / "overlay.png", rgb)
    np.testing.assert_array_equal(_decode((tmp_path / "overlay.png").read_bytes(), colour=2), rgb)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="image"):
        png_bytes(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="image"):
        png_bytes(np.zeros((4, 4, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="image"):
        png_bytes(np.zeros((0, 4)))
    with pytest.raises(ValueError, match="high"):
        png_bytes(np.zeros((2, 2)), low=1.0, high=1.0)
    for bad in (
        np.zeros((4, 4), dtype=np.uint8),
        np.zeros((4, 4, 4), dtype=np.uint8),
        np.zeros((4, 4, 3), dtype=np.float32),
        np.zeros((0, 4, 3), dtype=np.uint8),
    ):
        with pytest.raises(ValueError, match="image"):
            rgb_png_bytes(bad)  # type: ignore[arg-type]


def test_percentile_stretch_maps_low_and_high_to_black_and_white() -> None:
    image = np.linspace(0.0, 1.0, 1001, dtype=np.float32).reshape(1, -1)
    mapped = to_uint8(image, low_pct=10, high_pct=90)
    assert mapped[0, 50] == 0 and mapped[0, 950] == 255 and 120 < mapped[0, 500] < 135
