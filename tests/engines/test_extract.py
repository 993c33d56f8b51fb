"""Extraction: boxes on planted blobs, RELION's normalisation, inversion, downscaling."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from cryolive.engines.extract import default_box_px, extract_particles


def _blobs(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A noisy image (mean 50, sd 5) with dark Gaussian blobs at known sub-pixel centres."""
    image = rng.normal(50.0, 5.0, (400, 500)).astype(np.float32)
    xs = np.array([100.3, 250.0, 400.7, 20.0])
    ys = np.array([120.6, 200.2, 300.0, 200.0])
    yy, xx = np.mgrid[0:400, 0:500]
    for x, y in zip(xs, ys, strict=True):
        image -= 30.0 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 6.0**2)).astype(np.float32)
    return image, xs, ys


def test_boxes_are_centred_normalised_and_inverted() -> None:
    image, xs, ys = _blobs(np.random.default_rng(0))
    particles = extract_particles(image, xs, ys, pixel_size_a=1.5, box_px=64)
    assert len(particles) == 3 and particles.dropped == 1  # x = 20 lies within half a box
    assert particles.images.dtype == np.float32
    yy, xx = np.mgrid[0:64, 0:64] - 32
    outside = yy * yy + xx * xx > 24.0**2  # RELION's default: 0.75 of half the box
    for box in particles.images:
        assert abs(box[outside].mean()) < 1e-5
        assert box[outside].std() == pytest.approx(1.0, abs=1e-5)
        peak = np.unravel_index(np.argmax(ndimage.gaussian_filter(box, 3.0)), box.shape)
        assert abs(peak[0] - 32) <= 1 and abs(peak[1] - 32) <= 1  # inverted: the blob is bright
        assert box[32, 32] > 4.0
    kept = extract_particles(image, xs, ys, pixel_size_a=1.5, box_px=64, invert_contrast=False)
    assert np.allclose(kept.images, -particles.images)


def test_fourier_downscaling_keeps_the_particle_and_scales_the_pixel() -> None:
    image, xs, ys = _blobs(np.random.default_rng(1))
    full = extract_particles(image, xs, ys, pixel_size_a=1.0, box_px=64, normalise=False)
    small = extract_particles(
        image, xs, ys, pixel_size_a=1.0, box_px=64, rescale_px=32, normalise=False
    )
    assert small.images.shape == (3, 32, 32)
    assert small.pixel_size_a == pytest.approx(2.0)
    # the mean (the zero frequency) survives cropping the spectrum
    assert np.allclose(small.images.mean(axis=(1, 2)), full.images.mean(axis=(1, 2)), rtol=1e-4)
    assert np.argmax(small.images[0]) == np.ravel_multi_index((16, 16), (32, 32))


def test_default_box_is_one_and_a_half_diameters() -> None:
    assert default_box_px(100.0, pixel_size_a=1.0) == 150
    assert default_box_px(90.0, pixel_size_a=1.06) == 128


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"box_px": 63}, "box_px"),
        ({"box_px": 1000}, "box_px"),
        ({"rescale_px": 80}, "rescale_px"),
        ({"pixel_size_a": -1.0}, "pixel_size_a"),
        ({"background_radius_px": 0.0}, "background_radius_px"),
    ],
)
def test_bad_parameters_are_named(kwargs: dict[str, float], name: str) -> None:
    image, xs, ys = _blobs(np.random.default_rng(2))
    settings: dict[str, float] = {"pixel_size_a": 1.0, "box_px": 64, **kwargs}
    with pytest.raises(ValueError, match=name):
        extract_particles(image, xs, ys, **settings)  # type: ignore[arg-type]
