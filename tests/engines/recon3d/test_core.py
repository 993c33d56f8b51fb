"""The 3D core against independent real-space computation and known geometry."""

from __future__ import annotations

import numpy as np
import pytest

from cryolive.engines.recon3d import (
    Projector,
    Reconstructor,
    euler_to_matrix,
    fsc,
    image_transforms,
    images_from_transforms,
    matrix_to_euler,
    particle_ctf,
    phantom,
    project_real,
    random_rotations,
    resolution_at,
)


@pytest.fixture(scope="module")
def volume() -> np.ndarray:
    return phantom(32, np.random.default_rng(1))


def test_fourier_slice_matches_real_space_projection(volume: np.ndarray) -> None:
    a = euler_to_matrix([[30.0, 60.0, 100.0], [200.0, 120.0, 10.0]])
    slices = images_from_transforms(Projector(volume).project(a), 32)
    for k in range(2):
        real = project_real(volume, a[k])
        assert np.corrcoef(real.ravel(), slices[k].ravel())[0, 1] > 0.999
        assert np.abs(real - slices[k]).max() < 0.05 * np.abs(real).max()


def test_relion_euler_matrix_and_round_trip() -> None:
    # tilt 90 about y: the volume's z axis becomes the image's -x axis for RELION's A
    a = euler_to_matrix([[0.0, 90.0, 0.0]])[0]
    assert np.allclose(a @ [0, 0, 1], [-1, 0, 0], atol=1e-12)
    angles = np.array([[10.0, 50.0, 300.0 - 360.0], [170.0, 20.0, 45.0]])
    assert np.allclose(matrix_to_euler(euler_to_matrix(angles)), angles, atol=1e-9)


def test_shift_moves_the_image_by_its_origin(volume: np.ndarray) -> None:
    a = euler_to_matrix([[0.0, 0.0, 0.0]])
    moved = images_from_transforms(Projector(volume).project(a, np.array([[3.0, -2.0]])), 32)[0]
    plain = project_real(volume, a[0])
    assert np.corrcoef(np.roll(plain, (-2, 3), axis=(0, 1)).ravel(), moved.ravel())[0, 1] > 0.999


def test_reconstruction_with_ctf_recovers_the_map(volume: np.ndarray) -> None:
    rng = np.random.default_rng(2)
    rots = random_rotations(1500, rng)
    defocus = np.column_stack([rng.uniform(8000, 20000, 1500)] * 2 + [np.zeros(1500)])
    ctf = particle_ctf(32, 2.0, defocus)
    images = Projector(volume).project(rots) * ctf
    rec = Reconstructor(32)
    rec.insert(images, rots, ctf)
    curve = fsc(rec.reconstruct(), volume)
    assert curve[:10].min() > 0.95
    assert resolution_at(curve, 32, 2.0, 0.5) < 2.0 * 32 / 12


def test_image_transform_round_trip_and_fsc_of_noise() -> None:
    rng = np.random.default_rng(3)
    img = rng.normal(size=(2, 16, 16)).astype(np.float32)
    assert np.allclose(images_from_transforms(image_transforms(img), 16), img, atol=1e-5)
    a, b = rng.normal(size=(2, 32, 32, 32))
    assert np.abs(fsc(a, b)[2:]).max() < 0.2
    with pytest.raises(ValueError, match="differ in shape"):
        fsc(a, b[:16, :16, :16])


def test_ctf_is_positive_at_low_frequency_for_underfocus() -> None:
    ctf = particle_ctf(64, 1.0, np.array([[15000.0, 15000.0, 0.0]]), amplitude_contrast=0.1)
    assert ctf[0, 0, 0] == pytest.approx(0.1, abs=1e-6)
    assert ctf[0, 0, 2] > 0
