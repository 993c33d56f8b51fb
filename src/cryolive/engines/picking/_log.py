"""Template-free picking with a Laplacian of Gaussian over a range of particle diameters."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import fft as sfft

from cryolive.engines.picking._checks import check_inputs, default_working_pixel_a
from cryolive.engines.picking._collect import collect_picks
from cryolive.engines.picking._prepare import frequencies_sq, to_working_size
from cryolive.engines.picking._result import Picks


def pick_log(
    micrograph: NDArray[np.floating],
    *,
    pixel_size_a: float,
    diameter_min_a: float,
    diameter_max_a: float,
    threshold: float | None = None,
    n_scales: int = 4,
    min_distance_a: float | None = None,
    working_pixel_size_a: float | None = None,
    reject_bad_areas: bool = True,
) -> Picks:
    """Pick particles without templates: blobs of the expected size, darker than the ice.

    The micrograph is resampled to a working pixel size (Fourier cropping) and filtered with
    scale-normalised Laplacians of Gaussian s² ∇²G_s, s = r / √2 for radii r spanning
    [``diameter_min_a``, ``diameter_max_a``] / 2 (the scale at which a disc of radius r answers
    most). The score is the largest response over scales, in standard deviations of its
    background; peaks above the threshold at least ``min_distance_a`` apart, outside carbon,
    contamination and broken ice, are the picks. By default the threshold is set from this
    micrograph's own local maxima: the noise maxima's centre and spread, robustly estimated,
    and the height above which one noise maximum is expected (see ``noise_threshold``); weak
    particles on a quiet micrograph are kept, a noisy one is held to a higher bar.

    Parameters
    ----------
    micrograph : (y, x) float
        Motion-corrected micrograph, particles darker than the ice (as recorded).
    pixel_size_a : float
        Its pixel size, Å.
    diameter_min_a, diameter_max_a : float
        Range of particle diameters, Å.
    threshold : float, optional
        Score a peak must exceed, in background standard deviations; default (None) set from
        the micrograph's own score distribution (recorded in ``Picks.threshold``).
    n_scales : int
        Number of filter diameters spread evenly over the range.
    min_distance_a : float, optional
        Smallest distance between two picks (non-maximum suppression), Å; default
        0.75 x ``diameter_min_a``.
    working_pixel_size_a : float, optional
        Default: about 14 pixels across the smallest particle, within 3-8 Å.
    reject_bad_areas : bool
        Drop picks on carbon, contamination and broken ice (see ``bad_area_mask``).

    Returns
    -------
    Picks
        Coordinates in pixels of ``micrograph``, scores, diameters.

    Raises
    ------
    ValueError
        A parameter out of range (the message names it).
    UnusableMicrographError
        NaN/inf, blank or saturated micrograph.

    References
    ----------
    Lindeberg, T. (1998). Feature detection with automatic scale selection. Int. J. Comput.
    Vis. 30, 79-116. doi:10.1023/A:1008045108935
    Zivanov, J. et al. (2018). New tools for automated high-resolution cryo-EM structure
    determination in RELION-3. eLife 7, e42166 (its LoG picker). doi:10.7554/eLife.42166
    """
    check_inputs(
        micrograph,
        pixel_size_a=pixel_size_a,
        diameter_min_a=diameter_min_a,
        diameter_max_a=diameter_max_a,
    )
    if n_scales < 1:
        raise ValueError(f"n_scales: must be at least 1, got {n_scales}")
    pw = working_pixel_size_a or default_working_pixel_a(pixel_size_a, diameter_min_a)
    if not pw >= pixel_size_a:
        raise ValueError(
            f"working_pixel_size_a: must be at least pixel_size_a ({pixel_size_a}), got {pw}"
        )
    image = np.asarray(micrograph, dtype=np.float32)
    small, (scale_y, scale_x) = to_working_size(
        image, pixel_size_a=pixel_size_a, working_pixel_size_a=pw
    )
    pw_eff = pixel_size_a * scale_x
    diameters = np.linspace(diameter_min_a, diameter_max_a, n_scales)
    score, best = _log_stack(small, pixel_size_a=pw_eff, diameters_a=diameters)
    return collect_picks(
        score,
        small,
        diameters_a=diameters[best].astype(np.float32),
        scale=(scale_y, scale_x),
        pixel_size_a=pixel_size_a,
        working_pixel_size_a=pw_eff,
        diameter_min_a=diameter_min_a,
        diameter_max_a=diameter_max_a,
        min_distance_a=min_distance_a if min_distance_a is not None else 0.75 * diameter_min_a,
        threshold=threshold,
        reject_bad_areas=reject_bad_areas,
        method="log",
    )


def _log_stack(
    small: NDArray[np.float32], *, pixel_size_a: float, diameters_a: NDArray[np.float64]
) -> tuple[NDArray[np.float32], NDArray[np.intp]]:
    """Largest scale-normalised LoG response over ``diameters_a`` and the index that gave it.

    A dark blob answers positively: the filter is +s² |∇²G_s| in Fourier space,
    4π²s²k² exp(-2π²s²k²), applied to the image (dark blobs are negative) and negated.
    """
    spectrum = sfft.rfft2(small - np.float32(small.mean()), workers=-1)
    k2 = frequencies_sq(small.shape, pixel_size_a)
    best_score = np.full(small.shape, -np.inf, dtype=np.float32)
    best_index = np.zeros(small.shape, dtype=np.intp)
    for index, diameter in enumerate(diameters_a):
        sigma2 = np.float32((0.5 * diameter) ** 2 / 2.0)
        arg = np.float32(2.0 * np.pi**2) * sigma2 * k2
        kernel = -2.0 * arg * np.exp(-arg)  # = -4π²s²k² G: negated, so dark blobs score high
        response = sfft.irfft2(spectrum * kernel, s=small.shape, workers=-1).astype(np.float32)
        better = response > best_score
        best_score[better] = response[better]
        best_index[better] = index
    return best_score, best_index
