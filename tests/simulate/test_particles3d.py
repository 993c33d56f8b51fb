"""Simulated 3D particles: each image is its true projection, moved by its origin, times its CTF,
plus noise at the asked SNR; real-space and Fourier projection agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import starfile

from cryolive.engines.recon3d import (
    euler_to_matrix,
    image_transforms,
    particle_ctf,
    phantom,
    project_real,
    shift_phases,
)
from cryolive.io.maps import read_map
from cryolive.io.particle_files import read_particles_3d
from cryolive.simulate.particles3d import simulate_particles_3d, write_particles_3d_sim

BOX, PIXEL = 32, 3.0


@pytest.fixture(scope="module")
def volume() -> np.ndarray:
    return phantom(BOX, np.random.default_rng(4))


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.mark.parametrize("projection", ["real", "fourier"])
def test_images_are_ctf_times_the_moved_projection(volume: np.ndarray, projection: str) -> None:
    sim = simulate_particles_3d(
        volume, count=6, pixel_size_a=PIXEL, rng=np.random.default_rng(0), snr=1e8,
        projection=projection,  # type: ignore[arg-type]
    )  # fmt: skip
    assert sim.angles_deg is not None and sim.origins_a is not None
    assert np.abs(sim.origins_a).max() <= 3.0 * PIXEL and np.abs(sim.origins_a).max() > 0.5
    assert sim.defocus[:, :2].min() >= 8000 - 200 and sim.defocus[:, :2].max() <= 25000 + 200
    ctf = particle_ctf(BOX, PIXEL, sim.defocus, amplitude_contrast=sim.amplitude_contrast)
    for k, a in enumerate(euler_to_matrix(sim.angles_deg)):
        expected = image_transforms(project_real(volume, a)[None])[0]
        expected = expected * shift_phases(BOX, sim.origins_a[k : k + 1] / PIXEL)[0] * ctf[k]
        got = image_transforms(sim.images[k : k + 1])[0]
        assert _corr(np.abs(expected), np.abs(got)) > 0.99
        assert (
            np.real(np.vdot(expected, got)) / np.linalg.norm(expected) / np.linalg.norm(got) > 0.99
        )


def test_noise_has_the_asked_snr(volume: np.ndarray) -> None:
    clean = simulate_particles_3d(
        volume, count=60, pixel_size_a=PIXEL, rng=np.random.default_rng(1), snr=1e8,
        projection="fourier",
    )  # fmt: skip
    noisy = simulate_particles_3d(
        volume, count=60, pixel_size_a=PIXEL, rng=np.random.default_rng(1), snr=0.25,
        projection="fourier",
    )  # fmt: skip
    noise = noisy.images - clean.images
    assert noise.var() / clean.images.var() == pytest.approx(4.0, rel=0.03)
    assert abs(float(noise.mean())) < 0.02 * float(noise.std())
    assert sorted(np.bincount(noisy.subset)[1:].tolist()) == [30, 30]


def test_files_hold_the_particles_and_the_truth(volume: np.ndarray, tmp_path: Path) -> None:
    sim = simulate_particles_3d(volume, count=10, pixel_size_a=PIXEL, rng=np.random.default_rng(2))
    star = write_particles_3d_sim(sim, volume, tmp_path)
    stack, _tables = read_particles_3d(star)
    assert stack.angles_deg is None and stack.origins_a is None  # the refinement must find them
    assert np.allclose(stack.images, sim.images) and np.allclose(
        stack.defocus, sim.defocus, atol=0.01
    )
    assert np.array_equal(stack.subset, sim.subset) and stack.pixel_size_a == PIXEL
    truth, _ = read_particles_3d(tmp_path / "truth.star")
    assert np.allclose(truth.angles_deg, sim.angles_deg, atol=1e-3)
    assert np.allclose(truth.origins_a, sim.origins_a, atol=1e-3)
    rows = starfile.read(tmp_path / "truth.star", always_dict=True)["particles"]
    assert np.allclose(rows["rlnOriginXAngst"], -sim.origins_a[:, 0], atol=1e-3)  # RELION's sign
    vol, voxel = read_map(tmp_path / "truth.mrc")
    assert voxel == pytest.approx(PIXEL) and np.allclose(vol, volume)


def test_bad_parameters_are_refused(volume: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="count"):
        simulate_particles_3d(volume, count=1, pixel_size_a=PIXEL, rng=rng)
    with pytest.raises(ValueError, match="snr"):
        simulate_particles_3d(volume, count=4, pixel_size_a=PIXEL, rng=rng, snr=0.0)
    with pytest.raises(ValueError, match="volume"):
        simulate_particles_3d(volume[:-1], count=4, pixel_size_a=PIXEL, rng=rng)
    with pytest.raises(ValueError, match="projection"):
        simulate_particles_3d(volume, count=4, pixel_size_a=PIXEL, rng=rng, projection="x")  # type: ignore[arg-type]
