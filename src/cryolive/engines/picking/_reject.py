"""Areas where no particle should be picked: carbon, ice contamination, broken ice.

Clear ice in a hole transmits a smoothly varying number of electrons (the energy filter removes
those scattered inelastically, exp(-t / λ) for thickness t). Carbon film and ice contamination
are thicker than the ice around them and show as darker areas with an edge; a hole in the ice
shows as a brighter one. The micrograph smoothed at the particle scale is compared with a
quadratic surface fitted robustly to it (the ice's own gradient), and pixels that depart from
that surface by more than a few per cent seed a bad area. Smoothing spreads a dark area's
edge outwards in proportion to its contrast, so each area is then grown only over the pixels
that depart by at least half of its own typical departure: the half-contrast contour, which is
where a step edge lies whatever the smoothing. A margin of a tenth of a diameter is added.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

_FIT_GRID = 64  # the surface is fitted on at most this many points per axis
TEXTURE_SDS = 6.0  # a bad area departs from the ice surface by more than this many texture SDs


def _quadratic_design(y: NDArray[np.float64], x: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=-1)


def bad_area_mask(
    image: NDArray[np.float32],
    *,
    pixel_size_a: float,
    diameter_a: float,
    max_departure: float = 0.025,
    margin_a: float | None = None,
) -> NDArray[np.bool_]:
    """Pixels of ``image`` that lie on carbon, contamination or broken ice.

    Parameters
    ----------
    image : (y, x) float32
        Micrograph (counts or any positive intensity), at ``pixel_size_a``.
    pixel_size_a : float
        Its pixel size, Å.
    diameter_a : float
        Largest particle diameter, Å: the smoothing scale and the margin kept from a bad area.
    max_departure : float
        Largest relative departure of the smoothed intensity from the fitted ice surface that
        still counts as clear ice (0.025: 2.5 %, about 90 Å of ice at λ = 3500 Å); raised to
        6 robust SDs of the departures on a micrograph whose ice has a stronger texture of its
        own, so that texture is not taken for contamination.
    margin_a : float, optional
        Distance (Å) kept from a bad area's edge; default a tenth of ``diameter_a``.

    Returns
    -------
    bad : (y, x) bool
    """
    if not pixel_size_a > 0:
        raise ValueError(f"pixel_size_a: must be positive, got {pixel_size_a}")
    if not diameter_a > 0:
        raise ValueError(f"diameter_a: must be positive, got {diameter_a}")
    radius_px = 0.5 * diameter_a / pixel_size_a
    margin_px = (0.1 * diameter_a if margin_a is None else margin_a) / pixel_size_a
    smooth = ndimage.gaussian_filter(image.astype(np.float32), radius_px, mode="reflect")
    level = float(np.median(smooth[::4, ::4]))
    if not level > 0:
        return np.zeros(image.shape, dtype=bool)
    relative = smooth / np.float32(level) - np.float32(1.0)
    ny, nx = image.shape
    step = max(1, max(ny, nx) // _FIT_GRID)
    sample = relative[::step, ::step].astype(np.float64)
    sy, sx = np.mgrid[0:ny:step, 0:nx:step].astype(np.float64)
    design = _quadratic_design(sy / ny - 0.5, sx / nx - 0.5).reshape(-1, 6)
    values = sample.ravel()
    # start from the most common level (the clear ice), not a mean that dark areas pull down
    counts, edges = np.histogram(values, bins=max(8, int(np.ptp(values) / (0.2 * max_departure))))
    mode = 0.5 * (edges[np.argmax(counts)] + edges[np.argmax(counts) + 1])
    keep = np.abs(values - mode) < max_departure
    coeffs = np.zeros(6)
    coeffs[0] = mode
    for terms in (3, 6, 6, 6):  # a plane first, then the quadratic; refit on what agrees
        if keep.sum() < 2 * terms:
            break
        coeffs = np.zeros(6)
        coeffs[:terms] = np.linalg.lstsq(design[keep, :terms], values[keep], rcond=None)[0]
        keep = np.abs(values - design @ coeffs) < max_departure
    yy = (np.arange(ny, dtype=np.float64) / ny - 0.5)[:, None]
    xx = (np.arange(nx, dtype=np.float64) / nx - 0.5)[None, :]
    c = coeffs
    surface = c[0] + c[1] * xx + c[2] * yy + c[3] * xx * xx + c[4] * xx * yy + c[5] * yy * yy
    departure = relative - surface
    # Clear ice has a texture of its own (thickness varying over hundreds of Å); a bad area
    # is an outlier from that texture, so the limit rises to 6 robust SDs of the departures
    # where the texture is stronger than ``max_departure`` allows. The texture is symmetric
    # about the surface; carbon and contamination lie on the dark side only, broken ice on
    # the bright side only, so the quieter side measures the texture.
    sampled = departure[::step, ::step]
    dark, bright = -sampled[sampled < 0], sampled[sampled > 0]
    sides = [float(np.median(side)) for side in (dark, bright) if side.size]
    spread = 1.4826 * min(sides) if sides else 0.0
    limit = max(max_departure, TEXTURE_SDS * spread)
    seeds, n_seeds = ndimage.label(np.abs(departure) > limit)
    bad = np.zeros(image.shape, dtype=bool)
    for index in range(1, n_seeds + 1):
        seed = seeds == index
        typical = float(np.median(departure[seed]))
        extent, _ = ndimage.label(departure * np.sign(typical) > 0.5 * abs(typical))
        touched = np.unique(extent[seed])
        bad |= np.isin(extent, touched[touched > 0]) | seed
    if bad.any():
        bad = ndimage.binary_dilation(bad, _disk(margin_px))
    return np.asarray(bad, dtype=bool)


def _disk(radius_px: float) -> NDArray[np.bool_]:
    r = max(1, int(np.ceil(radius_px)))
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    return np.asarray(y * y + x * x <= radius_px * radius_px + 0.5, dtype=bool)
