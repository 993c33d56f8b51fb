"""The motion-correction previews: 8-bit images a PNG decoder reads back pixel for pixel."""

from __future__ import annotations

import imagecodecs
import numpy as np
import pytest

from cryolive.io.png import png_bytes
from cryolive.outputs._png import to_uint8


def test_png_round_trips_through_a_decoder() -> None:
    image = np.random.default_rng(0).integers(0, 256, size=(37, 53), dtype=np.uint8)
    np.testing.assert_array_equal(imagecodecs.png_decode(png_bytes(image)), image)


def test_png_refuses_other_arrays() -> None:
    with pytest.raises(ValueError, match="image"):
        png_bytes(np.zeros((4, 4, 3), dtype=np.uint8))


def test_percentile_stretch_maps_low_and_high_to_black_and_white() -> None:
    image = np.linspace(0.0, 1.0, 1001, dtype=np.float32).reshape(1, -1)
    mapped = to_uint8(image, low_pct=10, high_pct=90)
    assert mapped[0, 50] == 0 and mapped[0, 950] == 255 and 120 < mapped[0, 500] < 135
