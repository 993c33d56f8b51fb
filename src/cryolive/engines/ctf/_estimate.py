"""estimate_ctf: tile spectra → background model → 1D defocus search → 2D refinement."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from cryolive.engines._checks import check_micrograph
from cryolive.engines._tiles import tile_power_spectra
from cryolive.engines.ctf._background import basis, smooth_level
from cryolive.engines.ctf._curves import profile_and_resolution
from cryolive.engines.ctf._diagnostic import diagnostic_image
from cryolive.engines.ctf._errors import CtfFitError
from cryolive.engines.ctf._fit import Band, held_out_sigmas, refine_2d, search_1d
from cryolive.engines.ctf._physics import Aberration, Optics, defocus_uv
from cryolive.engines.ctf._result import CtfCurves, CtfFit, CtfResult
from cryolive.engines.ctf._settings import CtfSearch
from cryolive.engines.ctf._spectrum import Grid

MIN_SIGNIFICANCE = 4.0


def estimate_ctf(
    image: NDArray[np.floating],
    *,
    optics: Optics,
    search: CtfSearch | None = None,
) -> CtfFit:
    """Fit the contrast transfer function of a micrograph.

    Parameters
    ----------
    image : (y, x) float32 or float64
        Micrograph (motion-corrected sum), any scale.
    optics : Optics
        Pixel size (Å), voltage (kV), Cs (mm), amplitude contrast.
    search : CtfSearch, optional
        Tile size, resolution band, defocus/astigmatism/phase-shift ranges.

    Returns
    -------
    CtfFit
        The result (defocus U/V in Å, positive underfocus; angle and phase shift in degrees),
        1D curves and a diagnostic image.

    Raises
    ------
    CtfFitError
        NaN/inf, blank or saturated micrograph, or no Thon rings stand out from the noise (then
        with ``best_guess``, the fit made anyway).
    ValueError
        A parameter is out of range (the message names it).

    Notes
    -----
    As in CTFFIND4: the power spectra of tiles are averaged; a smooth background B(|k|) and
    envelope E(|k|) are fitted with sin²χ by linear least squares; mean defocus (and phase
    shift) come from an exhaustive search on the rotational average; defocus U, V, angle (and
    phase shift) are refined on the 2D spectrum by maximising the correlation of P - B with
    E sin²χ over the band. Before that, the 1D search is run on each half of the tiles and
    checked against the other half: a fit that does not carry over (below 4 noise SDs) is
    refused as "no-thon-rings" rather than returned; the error carries the fit made anyway
    (``best_guess``: result, curves, diagnostic) for a person to look at.

    References
    ----------
    Rohou A, Grigorieff N (2015) CTFFIND4: fast and accurate defocus estimation from electron
    micrographs. J Struct Biol 192:216-221. doi:10.1016/j.jsb.2015.08.008
    """
    search = search or CtfSearch()
    if image.ndim != 2:
        raise ValueError(f"image must be 2D (y, x), got shape {image.shape}")
    if not np.issubdtype(image.dtype, np.floating) and not np.issubdtype(image.dtype, np.integer):
        raise ValueError(f"image must be numeric, got dtype {image.dtype}")
    if search.max_res_a < 2 * optics.pixel_size_a:
        raise ValueError(
            f"max_res_a ({search.max_res_a} Å) is beyond Nyquist "
            f"({2 * optics.pixel_size_a} Å at pixel_size_a {optics.pixel_size_a})"
        )
    box = search.box_for(optics.pixel_size_a, image.shape)
    if min(image.shape) < box:
        raise ValueError(f"box_px ({box}) is larger than the image {image.shape}")
    check_micrograph(image, CtfFitError)

    grid = Grid.of(box, optics.pixel_size_a)
    r_lo = grid.radius_px(search.min_res_a)
    r_hi = grid.radius_px(search.max_res_a)
    if r_hi - r_lo < 8:
        raise ValueError("min_res_a/max_res_a: the band spans fewer than 8 spectrum pixels")
    halves = tile_power_spectra(image, box)
    power = halves.mean(axis=0)
    level = smooth_level(power, grid.r_px, r_lo, grid.box_px / 2 - 1)
    spectrum = power / level
    off_axes = grid.off_axes()
    in_band = off_axes & (grid.r_px >= r_lo) & (grid.r_px <= r_hi)
    ab_band = Aberration.of(grid.kx[in_band], grid.ky[in_band], optics)
    vb2, ve2 = basis(grid.r_px[in_band], r_lo, r_hi)

    def band_of(spectrum: NDArray[np.float64]) -> Band:
        return Band(y=spectrum[in_band], ab=ab_band, vb=vb2, ve=ve2)

    radii = np.arange(math.ceil(r_lo), math.floor(r_hi) + 1, dtype=np.float64)
    k = radii / (grid.box_px * grid.pixel_size_a)
    vb, ve = basis(radii, r_lo, r_hi)
    ab_1d = Aberration.of(k, np.zeros_like(k), optics)

    def search_on(spectrum: NDArray[np.float64]) -> tuple[float, float]:
        profile = _rotational_average(spectrum, grid.r_px, off_axes, radii)
        return search_1d(Band(y=profile, ab=ab_1d, vb=vb, ve=ve), search)

    significance = min(
        held_out_sigmas(band_of(halves[1] / level), *search_on(halves[0] / level)),
        held_out_sigmas(band_of(halves[0] / level), *search_on(halves[1] / level)),
    )
    mean, phase = search_on(spectrum)
    params, cc = refine_2d(band_of(spectrum), mean, phase, search)

    outside = off_axes & (grid.r_px >= r_lo)
    ab_out = Aberration.of(grid.kx[outside], grid.ky[outside], optics)
    freq, data, fit, local, fit_res, (bg, env) = profile_and_resolution(
        spectrum, grid, ab_out, outside, params, r_lo
    )
    u, v, angle = defocus_uv(float(params[0]), float(params[1]), float(params[2]))
    phase_deg = math.degrees(float(params[3]))
    if search.fit_phase_shift and search.phase_wraps:
        low = search.min_phase_shift_deg
        phase_deg = low + (phase_deg - low) % 180.0
    result = CtfResult(
        defocus_u_a=u,
        defocus_v_a=v,
        astigmatism_angle_deg=angle,
        phase_shift_deg=phase_deg,
        cc=cc,
        fit_resolution_a=fit_res,
        significance=significance,
        box_px=box,
        pixel_size_a=optics.pixel_size_a,
        min_res_a=search.min_res_a,
        max_res_a=search.max_res_a,
    )
    curves = CtfCurves(
        frequency_per_a=tuple(float(x) for x in freq),
        data=tuple(float(x) for x in data),
        fit=tuple(float(x) for x in fit),
        cc=tuple(float(x) for x in local),
    )
    ab_all = Aberration.of(grid.kx, grid.ky, optics)
    r_fit = grid.radius_px(fit_res) if math.isfinite(fit_res) and fit_res > 0 else r_lo
    image_out = diagnostic_image(spectrum, grid, ab_all, params, bg, env, r_lo, r_fit)
    estimated = CtfFit(result=result, curves=curves, diagnostic=image_out)
    if significance < MIN_SIGNIFICANCE:
        raise CtfFitError(
            "no-thon-rings",
            "no Thon rings could be told from noise in this micrograph's power spectrum: the "
            "rings found on one half of the micrograph do not show in the other half, so the "
            f"defocus drawn ({result.defocus_a:.0f} Å) is only a best guess, not to be trusted. "
            "Thick or crystalline ice, an empty or very low-dose image, strong drift, or a "
            f"defocus outside the searched {search.min_defocus_a:.0f}-"
            f"{search.max_defocus_a:.0f} Å can cause this.",
            best_guess=estimated,
        )
    return estimated


def _rotational_average(
    spectrum: NDArray[np.float64],
    r_px: NDArray[np.float64],
    keep: NDArray[np.bool_],
    radii: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Mean of ``spectrum`` over the ``keep`` points nearest each integer radius in ``radii``."""
    bins = np.rint(r_px[keep]).astype(np.intp)
    size = int(radii[-1]) + 1
    counts = np.bincount(bins, minlength=size)[radii.astype(np.intp)]
    sums = np.bincount(bins, weights=spectrum[keep], minlength=size)[radii.astype(np.intp)]
    out: NDArray[np.float64] = sums / np.maximum(counts, 1)
    return out
