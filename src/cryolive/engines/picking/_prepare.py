"""Bring a micrograph to the working pixel size, and whiten its spectrum."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy import fft as sfft

from cryolive.engines._resample import fourier_resize

__all__ = [
    "fourier_resize",
    "frequencies_sq",
    "to_working_size",
    "whitened_spectrum",
    "working_shape",
]


def working_shape(
    shape: tuple[int, int], *, pixel_size_a: float, working_pixel_size_a: float
) -> tuple[int, int]:
    """Even shape of ``shape`` resampled from ``pixel_size_a`` to ~``working_pixel_size_a``."""
    if working_pixel_size_a <= pixel_size_a:
        return shape
    factor = pixel_size_a / working_pixel_size_a
    return (
        max(2, 2 * round(shape[0] * factor / 2)),
        max(2, 2 * round(shape[1] * factor / 2)),
    )


def frequencies_sq(shape: tuple[int, int], pixel_size_a: float) -> NDArray[np.float32]:
    """|k|² (Å⁻²) on the rfft2 grid of an image of ``shape``: (y, x//2 + 1) float32."""
    ky = np.fft.fftfreq(shape[0], d=pixel_size_a).astype(np.float32)[:, None]
    kx = np.fft.rfftfreq(shape[1], d=pixel_size_a).astype(np.float32)[None, :]
    return np.asarray(ky * ky + kx * kx, dtype=np.float32)


def to_working_size(
    image: NDArray[np.float32], *, pixel_size_a: float, working_pixel_size_a: float
) -> tuple[NDArray[np.float32], tuple[float, float]]:
    """``image`` at about ``working_pixel_size_a``, and (y, x) input pixels per working pixel.

    Large factors first average blocks of pixels (cheap, and the blocks are small enough that
    the Fourier crop that follows removes the frequencies they attenuate), then crop the
    spectrum of the smaller image to the exact working size.
    """
    binning = max(1, int(working_pixel_size_a / pixel_size_a / 1.5))
    if binning > 1:
        by, bx = image.shape[0] // binning, image.shape[1] // binning
        image = (
            image[: by * binning, : bx * binning]
            .reshape(by, binning, bx, binning)
            .mean(axis=(1, 3), dtype=np.float32)
        )
    size = pixel_size_a * binning
    shape = working_shape(image.shape, pixel_size_a=size, working_pixel_size_a=working_pixel_size_a)
    small = fourier_resize(image, shape)
    return small, (binning * image.shape[0] / shape[0], binning * image.shape[1] / shape[1])


def whitened_spectrum(image: NDArray[np.float32]) -> NDArray[np.complex64]:
    """rfft2 of ``image`` (y, x) divided by the square root of its radially averaged power.

    The noise of a micrograph is not white: the ice's low-frequency texture (thickness,
    transmission) and the CTF's rings add power at their own frequencies. Dividing each
    frequency by its ring's RMS amplitude flattens that power, so a filter tuned to a
    particle's size answers to a blob of that size rather than to a patch of thicker ice,
    and its noise is the same on any micrograph. Weak particles add little power of their
    own, so they are hardly dimmed; the mean (k = 0) is removed.
    """
    spectrum = sfft.rfft2(image - np.float32(image.mean()), workers=-1)
    ny, nx = image.shape
    ky = np.fft.fftfreq(ny)[:, None]
    kx = np.fft.rfftfreq(nx)[None, :]
    ring = np.rint(np.sqrt(ky * ky + kx * kx) * max(ny, nx)).astype(np.intp)
    power = np.abs(spectrum) ** 2
    total = np.bincount(ring.ravel(), weights=power.ravel())
    count = np.bincount(ring.ravel())
    rms = np.sqrt(total / np.maximum(count, 1))
    factor = np.where(rms > 0, math.sqrt(ny * nx) / np.maximum(rms, 1e-30), 0.0)
    factor[0] = 0.0
    return np.asarray(spectrum * factor[ring].astype(np.float32), dtype=np.complex64)
