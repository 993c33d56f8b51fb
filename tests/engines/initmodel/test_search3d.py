"""The shared search: restricted slices equal the core projector's, a cropped working box is
a binned one, and the least-squares score finds planted orientations, and with the
translation search planted shifts."""

from __future__ import annotations

from types import ModuleType

import numpy as np

from cryolive.engines._search3d import (
    Slicer,
    crop_transforms,
    offset_grid,
    prepare,
    refine_origins,
    resize_volume,
    score,
    search,
    working_box,
)
from cryolive.engines.recon3d import (
    ParticleStack3D,
    Projector,
    angular_distance_deg,
    image_transforms,
    orientation_grid,
    phantom,
    random_rotations,
    shell_index,
)


def test_restricted_slices_and_working_box_match_the_projector() -> None:
    rng = np.random.default_rng(0)
    volume = phantom(32, rng)
    rotations = random_rotations(20, rng)
    full = Projector(volume).project(rotations)
    small = working_box(32, 6.0)
    assert small == 16
    points = (shell_index(small) <= 6) & (shell_index(small) >= 1)
    slices = Slicer(resize_volume(volume, small), points)(rotations)
    expected = crop_transforms(full, small)[:, points]
    # the same trilinear slices, from a smaller padded grid: equal to a few parts in 1,000
    assert np.abs(slices - expected).max() < 3e-3 * np.abs(expected).max()


def test_score_finds_planted_orientations(sim3d: ModuleType) -> None:
    rng = np.random.default_rng(1)
    blobs = sim3d.blobs(rng)
    grid = orientation_grid(15.0)
    truth = rng.choice(len(grid), size=40, replace=False)
    images = sim3d.project(blobs, grid[truth], 32, np.zeros((40, 2)))

    defocus = np.column_stack([rng.uniform(8000, 20000, 40)] * 2 + [np.zeros(40)])
    stack = ParticleStack3D(images=images, pixel_size_a=4.0, defocus=defocus)
    parts = prepare(
        image_transforms(stack.images), defocus, 4.0, 20,
        voltage_kv=300.0, cs_mm=2.7, amplitude_contrast=0.1,
    )  # fmt: skip
    # the images carry no CTF: score them against CTF-free particles
    parts = type(parts)(parts.transforms, np.ones_like(parts.ctf), parts.box, parts.pixel_size_a)
    model = resize_volume(blobs.volume(32), 20)
    _, found, _ = score(parts, model, grid, 8.0)
    error = angular_distance_deg(grid[found], grid[truth])
    assert np.mean(error < 0.01) >= 0.95  # the planted grid point itself


def test_translation_search_recovers_planted_shifts(sim3d: ModuleType) -> None:
    """Images at grid orientations moved by up to ±3 px: the joint search (offsets ±2 working
    pixels, 1.45 px apart) finds orientation and shift near enough that ±½ px offsets at that
    orientation bring the shift within 1 px, and the orientations searched again there are the
    planted ones. Without the translation search the same images are not aligned."""
    rng = np.random.default_rng(4)
    blobs = sim3d.blobs(rng)
    grid = orientation_grid(15.0)
    n, pixel = 60, 4.0
    truth = rng.choice(len(grid), size=n, replace=False)
    shifts_px = rng.uniform(-3.0, 3.0, size=(n, 2))
    images = sim3d.project(blobs, grid[truth], 32, shifts_px)
    images += rng.normal(0.0, np.sqrt(images.var() / 2.0), images.shape).astype(np.float32)
    defocus = np.zeros((n, 3))
    parts = prepare(
        image_transforms(images), defocus, pixel, 22, voltage_kv=300.0, cs_mm=2.7,
        amplitude_contrast=0.1,
    )  # fmt: skip
    parts = type(parts)(parts.transforms, np.ones_like(parts.ctf), parts.box, parts.pixel_size_a)
    model = resize_volume(blobs.volume(32), 22)
    zero = np.zeros((n, 2))
    _, found, _, origins = search(
        parts, model, grid, 9.0, origins_a=zero, offsets_a=offset_grid(parts.pixel_size_a, 2),
        max_origin_a=16.0,
    )  # fmt: skip
    assert np.mean(angular_distance_deg(grid[found], grid[truth]) < 20.0) >= 0.8
    origins = refine_origins(
        parts, model, grid[found], 9.0, origins_a=origins, offsets_a=offset_grid(0.5 * pixel, 1),
        max_origin_a=16.0,
    )  # fmt: skip
    error_px = np.hypot(*(origins / pixel - shifts_px).T)
    assert np.mean(error_px < 1.0) >= 0.95
    _, again, _ = score(parts, model, grid, 9.0, origins_a=origins)
    assert np.mean(angular_distance_deg(grid[again], grid[truth]) < 0.01) >= 0.85
    _, blind, _ = score(parts, model, grid, 9.0)  # orientations only, at the box centre
    assert np.mean(angular_distance_deg(grid[blind], grid[truth]) < 0.01) < 0.3
