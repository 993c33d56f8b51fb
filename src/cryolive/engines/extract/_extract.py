"""Cut boxes around particle centres; RELION's background normalisation and inversion."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cryolive.engines._resample import fourier_resize


@dataclass(frozen=True, kw_only=True)
class Particles:
    """Extracted particle images.

    Attributes
    ----------
    images : (n, b, b) float32
        Boxes, protein bright when inverted, background zero mean and unit sd.
    x_px, y_px : (n,) float32
        Centres (micrograph pixels) of the particles kept: those whose box fits.
    pixel_size_a : float
        Pixel size of ``images``, Å (larger than the micrograph's after downscaling).
    box_px : int
        Side of a box as cut from the micrograph, pixels (``images`` may be smaller).
    dropped : int
        Centres whose box would cross the micrograph's edge.
    """

    images: NDArray[np.float32]
    x_px: NDArray[np.float32]
    y_px: NDArray[np.float32]
    pixel_size_a: float
    box_px: int
    dropped: int

    def __len__(self) -> int:
        return int(self.images.shape[0])


def default_box_px(diameter_a: float, *, pixel_size_a: float) -> int:
    """An even box of about 1.5 particle diameters, pixels."""
    if not diameter_a > 0:
        raise ValueError(f"diameter_a: must be positive, got {diameter_a}")
    if not pixel_size_a > 0:
        raise ValueError(f"pixel_size_a: must be positive, got {pixel_size_a}")
    return max(8, 2 * int(np.ceil(1.5 * diameter_a / pixel_size_a / 2)))


def extract_particles(
    micrograph: NDArray[np.floating],
    x_px: NDArray[np.floating],
    y_px: NDArray[np.floating],
    *,
    pixel_size_a: float,
    box_px: int,
    invert_contrast: bool = True,
    normalise: bool = True,
    background_radius_px: float | None = None,
    rescale_px: int | None = None,
) -> Particles:
    """Cut a ``box_px`` square around each centre and prepare it as RELION's extraction does.

    Each box is centred on the pixel nearest the centre (pixel ``box_px // 2`` is the centre),
    optionally Fourier-downscaled to ``rescale_px``, normalised so that the pixels outside a
    circle of ``background_radius_px`` have zero mean and unit standard deviation, and
    multiplied by -1 (``invert_contrast``: protein bright, as RELION expects).

    Parameters
    ----------
    micrograph : (y, x) float
        Motion-corrected micrograph.
    x_px, y_px : (n,) float
        Particle centres, micrograph pixels (x along axis 1).
    pixel_size_a : float
        Micrograph pixel size, Å.
    box_px : int
        Even box side, pixels (see :func:`default_box_px`).
    invert_contrast, normalise : bool
        As RELION's ``--invert_contrast`` and ``--norm``.
    background_radius_px : float, optional
        Radius of the particle circle in the output box, pixels; default 0.75 of half the box
        (RELION's default).
    rescale_px : int, optional
        Even output box side: Fourier cropping to a coarser pixel (RELION's ``--scale``).

    Returns
    -------
    Particles
    """
    if micrograph.ndim != 2:
        raise ValueError(f"micrograph: must be 2D (y, x), got shape {micrograph.shape}")
    if not pixel_size_a > 0:
        raise ValueError(f"pixel_size_a: must be positive, got {pixel_size_a}")
    if box_px < 8 or box_px % 2:
        raise ValueError(f"box_px: must be even and at least 8, got {box_px}")
    if box_px > min(micrograph.shape):
        raise ValueError(f"box_px: {box_px} exceeds the micrograph {micrograph.shape}")
    if rescale_px is not None and (rescale_px < 8 or rescale_px % 2 or rescale_px > box_px):
        raise ValueError(f"rescale_px: must be even, in [8, box_px={box_px}], got {rescale_px}")
    xs = np.asarray(x_px, dtype=np.float64).ravel()
    ys = np.asarray(y_px, dtype=np.float64).ravel()
    if xs.shape != ys.shape:
        raise ValueError(f"x_px, y_px: lengths differ ({xs.size} and {ys.size})")
    out_px = rescale_px or box_px
    radius = 0.75 * out_px / 2 if background_radius_px is None else background_radius_px
    if not 0 < radius < out_px / 2 * np.sqrt(2):
        raise ValueError(f"background_radius_px: must be in (0, box corner), got {radius}")
    half = box_px // 2
    iy, ix = np.rint(ys).astype(np.int64), np.rint(xs).astype(np.int64)
    fits = (iy - half >= 0) & (ix - half >= 0)
    fits &= (iy + half <= micrograph.shape[0]) & (ix + half <= micrograph.shape[1])
    yy, xx = np.mgrid[0:out_px, 0:out_px] - out_px // 2
    background = yy * yy + xx * xx > radius * radius
    images = np.empty((int(fits.sum()), out_px, out_px), dtype=np.float32)
    for k, (cy, cx) in enumerate(zip(iy[fits], ix[fits], strict=True)):
        box = np.asarray(micrograph[cy - half : cy + half, cx - half : cx + half], np.float32)
        if out_px != box_px:
            box = fourier_resize(box, (out_px, out_px))
        if normalise:
            ring = box[background]
            box = (box - ring.mean()) / max(float(ring.std()), 1e-12)
        images[k] = -box if invert_contrast else box
    return Particles(
        images=images,
        x_px=xs[fits].astype(np.float32),
        y_px=ys[fits].astype(np.float32),
        pixel_size_a=pixel_size_a * box_px / out_px,
        box_px=box_px,
        dropped=int(np.count_nonzero(~fits)),
    )
