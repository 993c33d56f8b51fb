"""Template-free picking with a Laplacian of Gaussian over a range of particle diameters."""

from __future__ import annotations

from functools import lru_cache, partial

import numpy as np
from numpy.typing import NDArray
from scipy import fft as sfft

from cryolive.engines.picking._checks import check_inputs, default_working_pixel_a
from cryolive.engines.picking._collect import collect_picks
from cryolive.engines.picking._peaks import background_z, local_maxima
from cryolive.engines.picking._prepare import frequencies_sq, to_working_size, whitened_spectrum
from cryolive.engines.picking._reject import bad_area_mask
from cryolive.engines.picking._result import Picks

# Gaussian scale s = width x radius. 1/√2 is where a uniform disc answers most (Lindeberg's
# scale selection); narrower filters match a particle's projection better (a projected ball
# has an RMS radius 0.63 r) and reach the higher frequencies where the CTF passes its
# contrast, but a narrow filter on a small particle at low defocus reaches past the CTF's
# first zero, where the contrast flips. Which is best depends on size and defocus together,
# so each micrograph tries these, widest first, and takes a narrower one only where it passes
# clearly more peaks at the same expected share of false ones (the threshold is an FDR bound,
# see ``fdr_threshold``): at least ``GAIN`` more, and ``MIN_GAIN`` peaks. A narrow filter
# also splits a large particle's lobes and its CTF fringes into peaks of their own, which
# the noise model does not count, so a gain of a few peaks is not taken as a gain.
WIDTHS = (1.0 / np.sqrt(2.0), 0.6, 0.5)
GAIN, MIN_GAIN = 0.05, 3


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
    scale-normalised Laplacians of Gaussian s² ∇²G_s, s = w r for radii r spanning
    [``diameter_min_a``, ``diameter_max_a``] / 2. The score is the largest response over
    scales, in standard deviations of its background; peaks above the threshold at least
    ``min_distance_a`` apart, outside carbon, contamination and broken ice, are the picks.
    The micrograph is whitened first (each frequency divided by its ring's RMS amplitude), so
    low-frequency ice texture does not score as particles. By default the threshold is set
    from this micrograph's own score map: the height above which the noise maxima expected
    (counted on the same filters' score of white noise, ``_null_maxima``) are at most 5 % of
    the peaks seen and at least one, so weak particles are kept where many stand above the
    noise and a micrograph with few is held to a higher bar; peaks in a much stronger pick's
    CTF fringes are dropped. With the automatic threshold, three filter widths w (``WIDTHS``)
    are tried and the one passing the most peaks at that same expected false share is kept (a
    narrow filter matches a particle's projection, a wide one stays inside the CTF's first
    ring on a small particle at low defocus); a narrower one is taken only where it passes at
    least 5 % more peaks. A given ``threshold`` uses w = 1/√2.

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
    if reject_bad_areas:
        bad = bad_area_mask(small, pixel_size_a=pw_eff, diameter_a=diameter_max_a)
    else:
        bad = np.zeros(small.shape, dtype=bool)
    spectrum = whitened_spectrum(small)
    best: Picks | None = None
    for width in WIDTHS if threshold is None else WIDTHS[:1]:
        score, index = _log_stack(
            spectrum, small.shape, pixel_size_a=pw_eff, diameters_a=diameters, width=width
        )
        key = (tuple(float(d / pw_eff) for d in diameters), width)
        picks = collect_picks(
            score,
            bad,
            diameters_a=diameters[index].astype(np.float32),
            scale=(scale_y, scale_x),
            pixel_size_a=pixel_size_a,
            working_pixel_size_a=pw_eff,
            diameter_min_a=diameter_min_a,
            diameter_max_a=diameter_max_a,
            min_distance_a=min_distance_a if min_distance_a is not None else 0.75 * diameter_min_a,
            threshold=threshold,
            method="log",
            null=None if threshold is not None else partial(_null_maxima, *key),
            rings=True,
        )
        if best is None or len(picks.x_px) > len(best.x_px) + max(MIN_GAIN, GAIN * len(best.x_px)):
            best = picks
    assert best is not None
    return best


NULL_SIZE = 1024  # side of the pure-noise image whose maxima calibrate the threshold


@lru_cache(maxsize=32)
def _null_maxima(
    diameters_px: tuple[float, ...], width: float, min_distance_px: float, border_px: int
) -> tuple[NDArray[np.float32], float]:
    """Heights (z units) of the local maxima of the score of white noise, and the area (px)
    they came from, for these filter diameters (working pixels) and width.

    The score is the largest of several filters' responses, whose upper tail is far heavier
    than one Gaussian field's: the Gaussian formula (``expected_noise_maxima``) with the
    map's roughness expected 10-20 times too few noise maxima above 3.5-4 SD (measured), and
    particle-free ice got 8-30 picks. A whitened micrograph's noise is white whatever its
    ice and CTF, so one noise image (``NULL_SIZE``², fixed seed) per filter set stands for
    every micrograph, made once per process.
    """
    noise = np.random.default_rng(0).standard_normal((NULL_SIZE, NULL_SIZE), dtype=np.float32)
    score, _ = _log_stack(
        whitened_spectrum(noise),
        noise.shape,
        pixel_size_a=1.0,
        diameters_a=np.asarray(diameters_px),
        width=width,
    )
    z = background_z(score, np.ones(score.shape, dtype=bool))
    peaks = local_maxima(z, min_distance_px=min_distance_px, border_px=border_px)
    heights = np.sort(z[peaks])[::-1][:10_000].copy()  # the upper tail is what counts
    heights.flags.writeable = False
    return heights, float((NULL_SIZE - 2 * border_px) ** 2)


def _log_stack(
    spectrum: NDArray[np.complex64],
    shape: tuple[int, int],
    *,
    pixel_size_a: float,
    diameters_a: NDArray[np.float64],
    width: float,
) -> tuple[NDArray[np.float32], NDArray[np.intp]]:
    """Largest scale-normalised LoG response over ``diameters_a`` and the index that gave it.

    ``spectrum`` is the rfft2 of the working image (``shape``). The Gaussian's scale is
    s = ``width`` x d / 2 for diameter d. A dark blob answers positively: the filter is
    +s² |∇²G_s| in Fourier space, 4π²s²k² exp(-2π²s²k²), applied to the image (dark blobs
    are negative) and negated.
    """
    k2 = frequencies_sq(shape, pixel_size_a)
    best_score = np.full(shape, -np.inf, dtype=np.float32)
    best_index = np.zeros(shape, dtype=np.intp)
    for index, diameter in enumerate(diameters_a):
        sigma2 = np.float32((width * 0.5 * diameter) ** 2)
        arg = np.float32(2.0 * np.pi**2) * sigma2 * k2
        kernel = -2.0 * arg * np.exp(-arg)  # = -4π²s²k² G: negated, so dark blobs score high
        response = sfft.irfft2(spectrum * kernel, s=shape, workers=-1).astype(np.float32)
        better = response > best_score
        best_score[better] = response[better]
        best_index[better] = index
    return best_score, best_index
