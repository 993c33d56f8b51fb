"""Reading one MRC micrograph: data and pixel size come back; broken files are refused."""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pytest

from cryolive.io.micrograph import MicrographReadError, read_micrograph


def _write(path: Path, data: np.ndarray, voxel: float) -> Path:
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(data)
        mrc.voxel_size = voxel
    return path


def test_reads_data_and_pixel_size(tmp_path: Path) -> None:
    data = np.random.default_rng(0).random((40, 60), dtype=np.float32)
    image, size = read_micrograph(_write(tmp_path / "m.mrc", data, 1.34))
    np.testing.assert_array_equal(image, data)
    assert image.dtype == np.float32
    assert size == pytest.approx(1.34)
    _, unknown = read_micrograph(_write(tmp_path / "n.mrc", data, 0.0))
    assert unknown is None


def test_broken_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(MicrographReadError, match="no such file"):
        read_micrograph(tmp_path / "missing.mrc")
    stack = _write(tmp_path / "stack.mrc", np.zeros((3, 16, 16), np.float32), 1.0)
    with pytest.raises(MicrographReadError, match="2D"):
        read_micrograph(stack)
    good = _write(tmp_path / "cut.mrc", np.zeros((64, 64), np.float32), 1.0)
    good.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(MicrographReadError, match=r"cut\.mrc"):
        read_micrograph(good)
    junk = tmp_path / "junk.mrc"
    junk.write_bytes(b"\x00\x01" * 10)
    with pytest.raises(MicrographReadError, match=r"junk\.mrc"):
        read_micrograph(junk)
