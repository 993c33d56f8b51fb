"""RELION's own motion correction through the adapter, on movies of the independent generator
(tests/engines/motion/independent_movies.py) with a drift that is not symmetric in x and y,
written as TIFF, MRC and MRCS: the shifts come back in cryolive's convention (content
displacement, rows of the file) and the sums in the rows of the file, whatever the format.

RELION reads TIFF frames bottom row first and MRC/MRCS frames in file order; before this was
handled, MRCS shifts had the wrong sign in y and TIFF sums came back upside down.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import mrcfile
import numpy as np
import pytest
import tifffile
from scipy import ndimage

from cryolive.adapters.relion_motioncorr import find_relion_motioncorr, run_relion_motioncorr
from cryolive.errors import BadInputError

needs_relion = pytest.mark.skipif(
    find_relion_motioncorr() is None, reason="relion_run_motioncorr is not on PATH"
)
_GENERATOR = Path(__file__).parents[2] / "engines" / "motion" / "independent_movies.py"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cryolive_tests_independent_movies", _GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _gain(shape: tuple[int, int]) -> np.ndarray:
    """A gain of 64 px blocks between 0.6 and 1.4, unlike its mirror image in y."""
    rng = np.random.default_rng(11)
    blocks = rng.uniform(0.6, 1.4, size=(shape[0] // 64, shape[1] // 64))
    return np.kron(blocks, np.ones((64, 64)))


def _write(path: Path, frames: np.ndarray) -> None:
    if path.suffix == ".tiff":
        tifffile.imwrite(path, frames)
    else:
        with mrcfile.new(path, overwrite=True) as mrc:
            mrc.set_data(frames.astype(np.int16))


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = ndimage.gaussian_filter(a, 3.0), ndimage.gaussian_filter(b, 3.0)
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


@pytest.fixture(scope="module")
def movie() -> object:
    shape = (512, 768)
    return _generator().independent_movie(
        3, shape=shape, n_frames=16, dose_per_px=4.0, gain=_gain(shape), workers=2
    )


@needs_relion
@pytest.mark.parametrize("suffix", [".tiff", ".mrc", ".mrcs"])
def test_relion_shifts_and_sums_are_in_the_files_orientation(
    movie: object, suffix: str, tmp_path: Path
) -> None:
    frames, planted = movie.frames, movie.drift_px  # type: ignore[attr-defined]
    rmse = _generator().drift_rmse
    mirrored = planted * [-1.0, 1.0]
    # The planted drift must tell the y sign apart (and x from y).
    assert rmse(mirrored, planted) > 1.0
    path = tmp_path / f"movie{suffix}"
    _write(path, frames)
    gain = _gain(frames.shape[1:])
    result = run_relion_motioncorr(path, tmp_path / "relion", pixel_size_a=1.0,
                                   dose_per_frame_e_per_a2=4.0, gain=gain, patches=(1, 1),
                                   threads=2)  # fmt: skip
    # RELION on a 512 x 768 x 16 movie at 4 e/px per frame: about 0.3 px from the truth;
    # the y-mirrored answer is about 1 px away.
    assert rmse(result.shifts_px, planted) < 0.5
    assert rmse(result.shifts_px, planted) < 0.5 * rmse(result.shifts_px, mirrored)
    # Sums in the file's rows, gain applied in the same rows: the gain-corrected image
    # (counts x gain), not its mirror image and without the gain's blocks.
    image = (frames * gain).sum(axis=0)
    for made in (result.plain_sum, result.dose_weighted_sum):
        assert made.shape == frames.shape[1:]
        assert _correlation(made, image) > 0.9
        assert _correlation(made[::-1], image) < 0.5


def test_a_format_relion_does_not_read_is_bad_input(tmp_path: Path) -> None:
    movie = tmp_path / "movie.eer"
    movie.write_bytes(b"\0" * 16)
    with pytest.raises(BadInputError, match="TIFF, MRC or MRCS"):
        run_relion_motioncorr(movie, tmp_path / "relion", pixel_size_a=1.0,
                              dose_per_frame_e_per_a2=1.0)  # fmt: skip
