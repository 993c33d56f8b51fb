"""An RGB image of a micrograph with its picks circled, for the web."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from cryolive.engines.picking._result import Picks

_PICK_RGB = np.array([64, 255, 96], dtype=np.float32)
_BAD_RGB = np.array([255, 64, 64], dtype=np.float32)


def overlay_picks(
    micrograph: NDArray[np.floating], picks: Picks, *, max_size_px: int = 1024
) -> NDArray[np.uint8]:
    """The micrograph, binned to at most ``max_size_px`` across, with a circle per pick.

    Parameters
    ----------
    micrograph : (y, x) float
        The micrograph the picks were made on.
    picks : Picks
        Its picks; each is drawn as a green circle of the pick's diameter, edged in black so
        it shows on light and dark areas alike, about 0.4% of the image's side thick (4 px at
        1024: still 1.5 px where the page shows it 384 px wide), and the rejected area
        (carbon, contamination) is tinted red.
    max_size_px : int
        Largest side of the image returned, pixels.

    Returns
    -------
    image : (yb, xb, 3) uint8
        RGB.
    """
    if micrograph.ndim != 2:
        raise ValueError(f"micrograph: must be 2D (y, x), got shape {micrograph.shape}")
    if max_size_px < 16:
        raise ValueError(f"max_size_px: must be at least 16, got {max_size_px}")
    ny, nx = micrograph.shape
    binning = max(1, -(-max(ny, nx) // max_size_px))
    by, bx = ny // binning, nx // binning
    binned = (
        np.asarray(micrograph[: by * binning, : bx * binning], dtype=np.float32)
        .reshape(by, binning, bx, binning)
        .mean(axis=(1, 3))
    )
    binned = ndimage.gaussian_filter(binned, 1.0)
    low, high = np.percentile(binned, [1.0, 99.0])
    grey = np.clip((binned - low) / max(float(high - low), 1e-12), 0.0, 1.0) * 255.0
    rgb = np.repeat(grey[..., None], 3, axis=2)
    if picks.bad_area.size and picks.bad_area.any():
        zoom = (by / picks.bad_area.shape[0], bx / picks.bad_area.shape[1])
        bad = ndimage.zoom(picks.bad_area.astype(np.float32), zoom, order=0)[:by, :bx] > 0.5
        rgb[: bad.shape[0], : bad.shape[1]][bad] = (
            0.6 * rgb[: bad.shape[0], : bad.shape[1]][bad] + 0.4 * _BAD_RGB
        )
    radius_b = 0.5 * np.asarray(picks.diameters_a) / (picks.pixel_size_a * binning)
    half = max(0.9, 0.002 * max(by, bx))  # half the ring's width, binned pixels
    yy, xx = np.mgrid[0:by, 0:bx]
    for x, y, r in zip(picks.x_px / binning, picks.y_px / binning, radius_b, strict=True):
        pad = half + 2
        y0, y1 = max(0, int(y - r - pad)), min(by, int(y + r + pad + 1))
        x0, x1 = max(0, int(x - r - pad)), min(bx, int(x + r + pad + 1))
        off = np.abs(np.hypot(yy[y0:y1, x0:x1] - y, xx[y0:y1, x0:x1] - x) - r)
        box = rgb[y0:y1, x0:x1]
        box[(off >= half) & (off < half + 1.0)] *= 0.25  # the dark edge
        box[off < half] = _PICK_RGB
    return np.asarray(np.rint(rgb), dtype=np.uint8)
