"""The automatic solvent mask: the map low-passed, thresholded from its histogram, grown, and
given a soft cosine edge."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from cryolive.engines.postprocess._shells import radius_grid


def lowpass(volume: NDArray[np.floating], pixel_size_a: float, res_a: float) -> NDArray[np.float64]:
    """``volume`` (b, b, b) low-passed at ``res_a`` Å (cosine edge one shell wide each side)."""
    box = volume.shape[0]
    r = radius_grid(box)
    cut = box * pixel_size_a / res_a  # shell of res_a
    w = np.clip(0.5 + (cut - r) / 2.0, 0.0, 1.0)  # linear ramp over 2 shells …
    w = 0.5 - 0.5 * np.cos(np.pi * w)  # … made a raised cosine
    f = np.fft.rfftn(np.asarray(volume, dtype=np.float64))
    return np.fft.irfftn(f * w, s=volume.shape, axes=(0, 1, 2))


def _distance_outside(binary: NDArray[np.bool_], reach: float) -> NDArray[np.float64]:
    """Distance (voxels) of each voxel to ``binary``, exact up to ``reach`` (∞ beyond).

    The transform runs on the object's bounding box grown by ``reach``, not the whole box.
    """
    out = np.full(binary.shape, np.inf)
    where = np.argwhere(binary)
    if where.size == 0:
        return out
    pad = int(np.ceil(reach)) + 1
    lo = np.maximum(where.min(axis=0) - pad, 0)
    hi = np.minimum(where.max(axis=0) + pad + 1, binary.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    out[box] = ndimage.distance_transform_edt(~binary[box])
    return out


def soft_edge(
    binary: NDArray[np.bool_], edge_px: float, *, extend_px: float = 0.0
) -> NDArray[np.float32]:
    """1 inside ``binary`` grown by ``extend_px`` voxels, falling as a raised cosine to 0 over
    the next ``edge_px`` voxels."""
    if extend_px < 0 or edge_px < 0:
        raise ValueError(f"extend_px and edge_px: must be ≥ 0, got {extend_px} and {edge_px}")
    d = _distance_outside(np.asarray(binary, dtype=bool), extend_px + edge_px)
    mask = (d <= extend_px).astype(np.float64)
    if edge_px > 0:
        ramp = (d > extend_px) & (d <= extend_px + edge_px)
        mask[ramp] = 0.5 + 0.5 * np.cos(np.pi * (d[ramp] - extend_px) / edge_px)
    return np.asarray(mask, dtype=np.float32)


def solvent_threshold(
    average: NDArray[np.floating],
    pixel_size_a: float,
    *,
    lowpass_a: float = 15.0,
    sigmas: float = 4.0,
) -> tuple[NDArray[np.float64], float]:
    """``average`` low-passed to ``lowpass_a`` Å, and the density above which it is particle
    rather than solvent (:func:`auto_mask`'s rule; also the threshold given to
    ``relion_mask_create`` by the RELION adapter)."""
    if lowpass_a < 2 * pixel_size_a:
        raise ValueError(f"lowpass_a: {lowpass_a} Å is finer than Nyquist ({2 * pixel_size_a} Å)")
    smooth = lowpass(average, pixel_size_a, lowpass_a)
    level = float(np.median(smooth))
    width = 1.4826 * float(np.median(np.abs(smooth - level)))
    top = float(smooth.max())
    return smooth, max(level + sigmas * width, level + 0.1 * (top - level))


def auto_mask(
    average: NDArray[np.floating],
    pixel_size_a: float,
    *,
    lowpass_a: float = 15.0,
    sigmas: float = 4.0,
    extend_px: float = 3.0,
    edge_px: float = 6.0,
) -> NDArray[np.float32]:
    """A soft solvent mask (b, b, b) in [0, 1] for the particle in ``average``.

    The map is low-passed to ``lowpass_a`` Å; in its histogram the solvent is the peak (most
    voxels), whose level and width are the median and the median absolute deviation. Voxels
    above level + ``sigmas`` widths (and at least a tenth of the way to the map's maximum) are
    the particle; the largest connected piece is kept, grown by ``extend_px`` voxels (all
    within that distance), and given a raised-cosine edge ``edge_px`` voxels wide.
    """
    smooth, threshold = solvent_threshold(average, pixel_size_a, lowpass_a=lowpass_a, sigmas=sigmas)
    binary = smooth > threshold
    if not binary.any():
        raise ValueError("average: nothing stands above the solvent; the map looks empty")
    labels, count = ndimage.label(binary)
    if count > 1:
        sizes = np.bincount(labels.ravel())[1:]
        binary = labels == int(np.argmax(sizes)) + 1
    return soft_edge(binary, edge_px, extend_px=extend_px)
