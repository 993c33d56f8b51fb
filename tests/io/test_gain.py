"""Gain references: orientation transforms and broken files."""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pytest
import tifffile

from cryolive.engines.motion import GainTransform
from cryolive.io import GainReadError
from cryolive.io.gain import read_gain
from cryolive.simulate._writers import write_gain_reference


def test_the_eight_transforms_are_distinct_and_invert() -> None:
    image = np.arange(12, dtype=np.float32).reshape(3, 4)
    outputs = {t.apply(image).tobytes() + bytes(t.apply(image).shape) for t in GainTransform.all()}
    assert len(outputs) == 8
    for t in GainTransform.all():
        np.testing.assert_array_equal(t.invert(t.apply(image)), image)
        assert t.apply(image).dtype == np.float32
    np.testing.assert_array_equal(GainTransform(90, "none").apply(image), np.rot90(image))
    np.testing.assert_array_equal(GainTransform(0, "x").apply(image), image[:, ::-1])


def test_bad_transform_parameters() -> None:
    with pytest.raises(ValueError, match="rotate_deg"):
        GainTransform(45, "none")
    with pytest.raises(ValueError, match="flip"):
        GainTransform(0, "z")  # type: ignore[arg-type]


@pytest.mark.parametrize("suffix", [".mrc", ".gain", ".tiff"])
def test_gain_round_trip(tmp_path: Path, suffix: str) -> None:
    gain = np.random.default_rng(0).uniform(0.8, 1.2, (16, 24)).astype(np.float32)
    path = tmp_path / f"g{suffix}"
    write_gain_reference(path, gain, pixel_size_a=1.0)
    np.testing.assert_array_equal(read_gain(path), gain)


def test_broken_gain_files(tmp_path: Path) -> None:
    (tmp_path / "empty.mrc").write_bytes(b"")
    with pytest.raises(GainReadError, match="zero-byte"):
        read_gain(tmp_path / "empty.mrc")
    with pytest.raises(GainReadError, match="no such file"):
        read_gain(tmp_path / "absent.gain")
    (tmp_path / "junk.mrc").write_bytes(b"junk" * 300)
    with pytest.raises(GainReadError, match="cannot be read"):
        read_gain(tmp_path / "junk.mrc")
    (tmp_path / "g.dm4").write_bytes(b"x")
    with pytest.raises(GainReadError, match="unknown gain suffix"):
        read_gain(tmp_path / "g.dm4")
    nan = np.ones((4, 4), np.float32)
    nan[1, 1] = np.nan
    tifffile.imwrite(tmp_path / "nan.gain", nan)
    with pytest.raises(GainReadError, match="NaN"):
        read_gain(tmp_path / "nan.gain")
    with mrcfile.new(tmp_path / "stack.mrc") as mrc:
        mrc.set_data(np.ones((3, 4, 4), np.float32))
    with pytest.raises(GainReadError, match="one 2D image"):
        read_gain(tmp_path / "stack.mrc")
    tifffile.imwrite(tmp_path / "zero.tif", np.zeros((4, 4), np.float32))
    with pytest.raises(GainReadError, match="not positive"):
        read_gain(tmp_path / "zero.tif")
