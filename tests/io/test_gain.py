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
    (tmp_path / "g.png").write_bytes(b"x")
    with pytest.raises(GainReadError, match="unknown gain suffix"):
        read_gain(tmp_path / "g.png")
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


def _touch(path: Path, mtime: float, data: bytes = b"x") -> Path:
    import os

    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return path


def test_serialem_and_epu_gain_references_are_found(tmp_path: Path) -> None:
    from cryolive.io.gain import find_gain_reference, gain_reference_candidates

    frames = tmp_path / "Frames"
    frames.mkdir()
    super_ref = _touch(frames / "SuperRef_20261206_1.dm4", 100)
    count_ref = _touch(frames / "CountRef_20261206_1.dm4", 200)
    for name in ("movie_001.tif", "movie_001.tif.mdoc", "ref.txt", "notes_gain.txt"):
        _touch(frames / name, 300)
    (frames / "gain_dir.mrc").mkdir()  # a folder named like a gain is not one
    assert gain_reference_candidates(frames) == [count_ref, super_ref]
    assert find_gain_reference(frames, super_resolution=True) == super_ref
    assert find_gain_reference(frames, super_resolution=False) == count_ref
    assert find_gain_reference(frames) == count_ref  # mode unknown: the newest
    # a .dm4 converted to MRC beside it: the readable one is used
    converted = _touch(frames / "SuperRef_20261206_1.mrc", 50)
    assert find_gain_reference(frames, super_resolution=True) == converted

    epu = tmp_path / "raw"
    epu.mkdir()
    assert find_gain_reference(epu) is None
    old = _touch(epu / "20261201_K3-18450_Gain_Ref.x1.m1.TIFF", 10)
    assert find_gain_reference(epu) == old  # case-insensitive, any case of suffix
    new = _touch(epu / "20261206_EER_GainReference.gain", 20)
    assert find_gain_reference(epu) == new
    # several folders searched alike; a missing one has none
    assert find_gain_reference(tmp_path / "absent", epu) == new
    assert gain_reference_candidates(tmp_path / "absent") == []


def test_dm4_gain_is_refused_with_a_way_out(tmp_path: Path) -> None:
    path = _touch(tmp_path / "SuperRef_x.dm4", 1, b"\0\0\0\4" + b"\0" * 60)
    with pytest.raises(GainReadError, match=r"cannot read: convert it to MRC .*dm2mrc"):
        read_gain(path)
