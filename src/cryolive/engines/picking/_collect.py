"""From a score map to picks: background statistics, bad areas, peaks, coordinates."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from cryolive.engines.picking._peaks import (
    NULL_FALSE_SHARE,
    NULL_MIN_FALSE,
    background_z,
    drop_rings,
    fdr_threshold,
    find_peaks,
    local_maxima,
    roughness,
)
from cryolive.engines.picking._result import Picks


def collect_picks(
    score: NDArray[np.float32],
    bad: NDArray[np.bool_],
    *,
    diameters_a: NDArray[np.float32],
    scale: tuple[float, float],
    pixel_size_a: float,
    working_pixel_size_a: float,
    diameter_min_a: float,
    diameter_max_a: float,
    min_distance_a: float,
    threshold: float | None,
    method: Literal["log", "template"],
    null: Callable[[float, int], tuple[NDArray[np.float32], float]] | None = None,
    rings: bool = False,
) -> Picks:
    """Picks from ``score`` (y, x) computed on the micrograph at the working size, outside
    ``bad`` (carbon, contamination, broken ice; see ``bad_area_mask``).

    ``diameters_a`` (y, x) gives the diameter each pixel's score stands for; ``scale`` is
    (micrograph pixels per working pixel) along y and x. ``threshold`` None: set from this
    micrograph's own local maxima in clear ice (:func:`fdr_threshold`). ``null``: given the
    minimum distance and the border (working pixels), the local maxima of the same score on
    pure noise (z units) and the area (px) they came from; that count, rather than the
    Gaussian formula, says how many noise maxima an area holds (with ``NULL_FALSE_SHARE``).
    ``rings``: drop peaks in a much stronger pick's CTF fringes (:func:`drop_rings`; the
    LoG's blob filter answers to a fringe's arc; template matching was not measured with it).
    """
    z = background_z(score, ~bad)
    radius_px = 0.5 * diameter_min_a / working_pixel_size_a
    border_px = int(np.ceil(0.5 * radius_px))
    min_distance_px = min_distance_a / working_pixel_size_a
    if threshold is None:
        maxima = local_maxima(z, min_distance_px=min_distance_px, border_px=border_px) & ~bad
        inner = np.zeros(z.shape, dtype=bool)
        inner[border_px : z.shape[0] - border_px, border_px : z.shape[1] - border_px] = True
        usable = inner & ~bad
        area = float(np.count_nonzero(usable))
        if null is None:
            threshold = fdr_threshold(z[maxima], area_px=area, roughness_px=roughness(z, usable))
        else:
            threshold = fdr_threshold(
                z[maxima],
                area_px=area,
                roughness_px=0.0,
                false_share=NULL_FALSE_SHARE,
                min_false=NULL_MIN_FALSE,
                null=null(min_distance_px, border_px),
            )
    py, px = find_peaks(
        z, min_distance_px=min_distance_px, threshold=threshold, border_px=border_px
    )
    if rings:
        keep = drop_rings(py, px, z[py, px], reach_px=1.5 * diameter_max_a / working_pixel_size_a)
        py, px = py[keep], px[keep]
    on_bad = bad[py, px]
    py, px = py[~on_bad], px[~on_bad]
    sy, sx = scale
    # a working pixel's centre, in micrograph pixels (both measured from pixel centres)
    y = (py + 0.5) * sy - 0.5
    x = (px + 0.5) * sx - 0.5
    diameters = diameters_a[py, px]
    middle = 0.5 * (diameter_min_a + diameter_max_a)
    return Picks(
        x_px=x.astype(np.float32),
        y_px=y.astype(np.float32),
        scores=z[py, px].astype(np.float32),
        diameters_a=diameters.astype(np.float32),
        diameter_a=float(np.median(diameters)) if diameters.size else middle,
        pixel_size_a=pixel_size_a,
        working_pixel_size_a=working_pixel_size_a,
        method=method,
        threshold=float(threshold),
        rejected_bad_area=int(np.count_nonzero(on_bad)),
        bad_area=bad,
    )
