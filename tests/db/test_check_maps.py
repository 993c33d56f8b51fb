"""The daily check's map figure: a refined map in another orientation, hand and position
than the truth, at another voxel size, is aligned back and its FSC against the truth reaches
what its noise allows; a visit without a truth map or a refinement gives no figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.orm import Session

from cryolive.check import check_maps, map_fsc_vs_truth
from cryolive.engines.recon3d import euler_to_matrix, fsc, phantom, resolution_at, rotate_volume
from cryolive.io.maps import write_map


@pytest.fixture(scope="module")
def maps() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A truth map (box 48, 1.8 Å) and a 'refined' map (box 24, 3.6 Å): the truth at half
    the sampling, rotated by (40°, 70°, -110°), mirrored, moved by (2, -1, 1) voxels, noisy."""
    rng = np.random.default_rng(11)
    truth = phantom(24, rng)
    fine = truth  # the same map ...
    big = np.zeros((48, 48, 48), np.float32)
    spectrum = np.fft.fftshift(np.fft.fftn(fine))
    padded = np.zeros((48, 48, 48), complex)
    padded[12:36, 12:36, 12:36] = spectrum
    big[:] = np.fft.ifftn(np.fft.ifftshift(padded)).real * 8  # ... sampled twice as finely
    refined = rotate_volume(truth, euler_to_matrix([[40.0, 70.0, -110.0]])[0])[::-1]
    refined = np.roll(refined, (2, -1, 1), axis=(0, 1, 2))
    refined = refined + rng.normal(0, 0.02 * refined.std(), refined.shape).astype(np.float32)
    return big, truth, np.ascontiguousarray(refined, dtype=np.float32)


def test_a_refined_map_is_aligned_to_the_truth_before_its_fsc(
    maps: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    truth, small, refined = maps
    curve = map_fsc_vs_truth(refined, 3.6, truth, 1.8)
    aligned = resolution_at(curve, 24, 3.6, 0.5)
    assert aligned < 9.0  # near Nyquist (7.2 Å): cubic interpolation twice costs a little
    # unaligned, the same maps do not agree beyond the lowest shells
    naive = resolution_at(fsc(refined, small), 24, 3.6, 0.5)
    assert naive > 2 * aligned


def test_check_maps_needs_a_truth_map(tmp_path: Path, db: Session) -> None:
    assert check_maps(db, visit_dir=tmp_path) == []
    write_map(tmp_path / "truth" / "map.mrc", np.zeros((8, 8, 8), np.float32), pixel_size_a=2.0)
    assert check_maps(db, visit_dir=tmp_path) == []  # no refinement in this visit
