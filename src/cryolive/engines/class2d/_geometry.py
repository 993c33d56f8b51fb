"""Resampling, masks and in-plane transforms of square images.

Conventions: the centre of a bxb image is pixel (b//2, b//2), as in RELION and the FFT. An
angle ψ turns an image counterclockwise as displayed with y down the rows: from +x (axis 1)
towards +y (axis 0). A shift (dy, dx) moves the content by dy rows and dx columns.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import fft as sfft
from scipy import ndimage


def fourier_crop(images: NDArray[np.floating], box_px: int) -> NDArray[np.float32]:
    """Resample a stack (n, b, b) to (n, box, box) by cropping or padding its spectrum."""
    b = images.shape[-1]
    if box_px == b:
        return np.asarray(images, dtype=np.float32)
    out = crop_spectrum(sfft.rfft2(images, workers=-1), b, box_px)
    resized = sfft.irfft2(out, s=(box_px, box_px), workers=-1)
    return np.asarray(resized * np.float32(box_px * box_px / (b * b)), dtype=np.float32)


def crop_spectrum(
    spectrum: NDArray[np.complexfloating], box_px: int, new_box_px: int
) -> NDArray[np.complex64]:
    """The rfft2 spectrum (..., b, b/2 + 1) of a b x b image cropped or padded for a new box
    (not rescaled: multiply the inverse by new_box² / b² to keep values)."""
    out = np.zeros((*spectrum.shape[:-2], new_box_px, new_box_px // 2 + 1), dtype=np.complex64)
    h = min(box_px, new_box_px) // 2
    out[..., :h, : h + 1] = spectrum[..., :h, : h + 1]
    out[..., new_box_px - h :, : h + 1] = spectrum[..., box_px - h :, : h + 1]
    return out


def radius_grid(box_px: int) -> NDArray[np.float32]:
    """Distance of each pixel from the centre (b//2, b//2), pixels."""
    yy, xx = np.mgrid[0:box_px, 0:box_px].astype(np.float32) - np.float32(box_px // 2)
    return np.asarray(np.hypot(yy, xx), dtype=np.float32)


def soft_disc(box_px: int, radius_px: float, edge_px: float = 3.0) -> NDArray[np.float32]:
    """1 inside ``radius_px``, a raised-cosine fall to 0 over ``edge_px``."""
    r = radius_grid(box_px)
    ramp = np.clip((r - radius_px) / max(edge_px, 1e-6), 0.0, 1.0)
    return np.asarray(0.5 + 0.5 * np.cos(np.pi * ramp), dtype=np.float32)


def rotation_yx(angle_deg: float) -> NDArray[np.float64]:
    """Matrix acting on (y, x) vectors that turns them by ``angle_deg`` (+x towards +y)."""
    a = np.deg2rad(angle_deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, s], [-s, c]])


def transform(
    image: NDArray[np.float32],
    *,
    angle_deg: float,
    shift_px: tuple[float, float] = (0.0, 0.0),
    inverse: bool = False,
    order: int = 1,
) -> NDArray[np.float32]:
    """Rotate ``image`` by ``angle_deg`` about its centre, then shift by ``shift_px`` (y, x).

    ``inverse`` undoes that pose: it shifts by ``-shift_px``, then rotates by ``-angle_deg``.
    """
    b = image.shape[-1]
    centre = np.array([b // 2, b // 2], dtype=np.float64)
    shift = np.asarray(shift_px, dtype=np.float64)
    if inverse:
        # out(o) = in(R(θ)(o - c) + c + t)
        matrix = rotation_yx(angle_deg)
        offset = centre + shift - matrix @ centre
    else:
        # out(o) = in(R(-θ)(o - c - t) + c)
        matrix = rotation_yx(-angle_deg)
        offset = centre - matrix @ (centre + shift)
    out = ndimage.affine_transform(
        image, matrix, offset=offset, order=order, mode="constant", cval=0.0, prefilter=order > 1
    )
    return np.asarray(out, dtype=np.float32)


def fourier_shift(
    images: NDArray[np.float32], shift_px: NDArray[np.floating]
) -> NDArray[np.float32]:
    """Shift each image of a stack (n, b, b) by its (dy, dx) (n, 2), exactly, with wrap-around."""
    b = images.shape[-1]
    ky = np.fft.fftfreq(b)[:, None]
    kx = np.fft.rfftfreq(b)[None, :]
    dy = shift_px[:, 0][:, None, None]
    dx = shift_px[:, 1][:, None, None]
    phase = np.exp(-2j * np.pi * (ky * dy + kx * dx)).astype(np.complex64)
    out = sfft.irfft2(sfft.rfft2(images, workers=-1) * phase, s=(b, b), workers=-1)
    return np.asarray(out, dtype=np.float32)


def transform_stack(
    images: NDArray[np.float32],
    index: NDArray[np.int64],
    angle_deg: NDArray[np.floating],
    shift_px: NDArray[np.floating],
    *,
    inverse: bool = False,
) -> NDArray[np.float32]:
    """:func:`transform` (bilinear) of ``images[index[j]]`` by pose j, for every j at once."""
    b = images.shape[-1]
    c = float(b // 2)
    oy, ox = np.mgrid[0:b, 0:b].astype(np.float32) - np.float32(c)
    a = np.deg2rad(np.asarray(angle_deg, dtype=np.float64))[:, None, None]
    cos, sin = np.cos(a).astype(np.float32), np.sin(a).astype(np.float32)
    dy = np.asarray(shift_px[:, 0], dtype=np.float32)[:, None, None]
    dx = np.asarray(shift_px[:, 1], dtype=np.float32)[:, None, None]
    if inverse:  # in(R(θ) o' + c + t), o' = o - c
        y = cos * oy + sin * ox + c + dy
        x = -sin * oy + cos * ox + c + dx
    else:  # in(R(-θ)(o' - t) + c)
        qy, qx = oy - dy, ox - dx
        y = cos * qy - sin * qx + c
        x = sin * qy + cos * qx + c
    z = np.broadcast_to(np.asarray(index, dtype=np.float32)[:, None, None], y.shape)
    out = ndimage.map_coordinates(images, [z, y, x], order=1, mode="constant", cval=0.0)
    return np.asarray(out, dtype=np.float32)
