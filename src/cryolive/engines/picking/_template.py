"""Template matching: normalised cross-correlation in Fourier space, through the CTF."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy import fft as sfft
from scipy import ndimage

from cryolive.engines.picking._checks import check_inputs, default_working_pixel_a
from cryolive.engines.picking._collect import collect_picks
from cryolive.engines.picking._prepare import to_working_size
from cryolive.engines.picking._reject import bad_area_mask
from cryolive.engines.picking._result import MicrographCtf, Picks
from cryolive.engines.picking._templates import prepared_templates


def pick_templates(
    micrograph: NDArray[np.floating],
    templates: NDArray[np.floating],
    *,
    pixel_size_a: float,
    template_pixel_size_a: float,
    diameter_a: float,
    ctf: MicrographCtf | None = None,
    threshold: float | None = 5.0,
    angular_step_deg: float | None = None,
    min_distance_a: float | None = None,
    working_pixel_size_a: float | None = None,
    reject_bad_areas: bool = True,
) -> Picks:
    """Pick particles that look like any of ``templates`` at any in-plane rotation.

    Each template is resampled to the working pixel size, rotated in steps, multiplied by the
    micrograph's CTF (when given), masked to a disc and normalised; its cross-correlation with
    the micrograph (one product of spectra per rotation) is divided by the micrograph's local
    standard deviation under the same disc, giving the normalised cross-correlation at every
    position. The score is its maximum over templates and rotations, in background standard
    deviations; peaks above ``threshold`` outside bad areas are the picks.

    Parameters
    ----------
    micrograph : (y, x) float
        Motion-corrected micrograph, particles darker than the ice (as recorded).
    templates : (n, b, b) float
        Projections or 2D class averages, protein bright (RELION's convention for averages),
        CTF-corrected, centred.
    pixel_size_a, template_pixel_size_a : float
        Pixel sizes of the micrograph and of the templates, Å.
    diameter_a : float
        Particle diameter, Å: the mask of the templates and the peak separation.
    ctf : MicrographCtf, optional
        The micrograph's CTF; without it the templates are only inverted (the CTF taken as a
        constant negative, true for the lowest frequencies).
    threshold : float or None
        Score a peak must exceed, in background standard deviations; None: set from the
        micrograph's own score distribution, as :func:`pick_log` does by default.
    angular_step_deg : float, optional
        In-plane rotation step, degrees; default one working pixel at the particle's edge.
    min_distance_a : float, optional
        Smallest distance between two picks, Å; default 0.75 x ``diameter_a``.
    working_pixel_size_a : float, optional
        Default: about 14 pixels across the particle, within 3-8 Å.
    reject_bad_areas : bool
        Drop picks on carbon, contamination and broken ice.

    Returns
    -------
    Picks

    References
    ----------
    Roseman, A. M. (2003). Particle finding in electron micrographs using a fast local
    correlation algorithm. Ultramicroscopy 94, 225-236. doi:10.1016/S0304-3991(02)00333-9
    """
    check_inputs(
        micrograph, pixel_size_a=pixel_size_a, diameter_min_a=diameter_a, diameter_max_a=diameter_a
    )
    if templates.ndim != 3 or templates.shape[1] != templates.shape[2] or templates.shape[0] < 1:
        raise ValueError(f"templates: must be (n, b, b) with n >= 1, got {templates.shape}")
    if not template_pixel_size_a > 0:
        raise ValueError(f"template_pixel_size_a: must be positive, got {template_pixel_size_a}")
    if templates.shape[1] * template_pixel_size_a < diameter_a:
        raise ValueError(
            f"templates: a box of {templates.shape[1]} px x {template_pixel_size_a} Å is "
            f"smaller than diameter_a ({diameter_a} Å)"
        )
    pw = working_pixel_size_a or default_working_pixel_a(pixel_size_a, diameter_a)
    if not pw >= pixel_size_a:
        raise ValueError(
            f"working_pixel_size_a: must be at least pixel_size_a ({pixel_size_a}), got {pw}"
        )
    image = np.asarray(micrograph, dtype=np.float32)
    small, (scale_y, scale_x) = to_working_size(
        image, pixel_size_a=pixel_size_a, working_pixel_size_a=pw
    )
    pw_eff = pixel_size_a * scale_x
    radius_px = 0.5 * diameter_a / pw_eff
    step = angular_step_deg or math.degrees(1.0 / max(radius_px, 1.0))
    if not 0 < step <= 180:
        raise ValueError(f"angular_step_deg: must be in (0, 180], got {angular_step_deg}")
    kernels, mask = prepared_templates(
        np.asarray(templates, dtype=np.float32),
        template_pixel_size_a=template_pixel_size_a,
        pixel_size_a=pw_eff,
        diameter_a=diameter_a,
        ctf=ctf,
        angles_deg=np.arange(0.0, 360.0 - 1e-6, step),
    )
    flat = small - ndimage.gaussian_filter(small, 2.0 * radius_px, mode="reflect")
    score = _best_ncc(flat, kernels, mask)
    if reject_bad_areas:
        bad = bad_area_mask(small, pixel_size_a=pw_eff, diameter_a=diameter_a)
    else:
        bad = np.zeros(small.shape, dtype=bool)
    return collect_picks(
        score,
        bad,
        diameters_a=np.full(small.shape, diameter_a, dtype=np.float32),
        scale=(scale_y, scale_x),
        pixel_size_a=pixel_size_a,
        working_pixel_size_a=pw_eff,
        diameter_min_a=diameter_a,
        diameter_max_a=diameter_a,
        min_distance_a=min_distance_a if min_distance_a is not None else 0.75 * diameter_a,
        threshold=threshold,
        method="template",
    )


def _centred_spectrum(kernel: NDArray[np.float32], shape: tuple[int, int]) -> NDArray[np.complex64]:
    """rfft2 of ``kernel`` (b, b) placed with its centre at the origin of a ``shape`` grid."""
    b = kernel.shape[0]
    full = np.zeros(shape, dtype=np.float32)
    full[:b, :b] = kernel
    full = np.roll(full, (-(b // 2), -(b // 2)), axis=(0, 1))
    return np.asarray(sfft.rfft2(full, workers=-1), dtype=np.complex64)


def _best_ncc(
    image: NDArray[np.float32], kernels: NDArray[np.float32], mask: NDArray[np.float32]
) -> NDArray[np.float32]:
    """Largest normalised cross-correlation of ``image`` with any of ``kernels`` (k, b, b).

    Kernels are zero-mean and unit-norm inside ``mask`` (b, b) {0, 1}; the image's local
    sum and sum of squares under the mask give its local standard deviation.
    """
    shape = image.shape
    spectrum = sfft.rfft2(image, workers=-1)
    mask_spec = np.conj(_centred_spectrum(mask, shape))
    n = float(mask.sum())
    local_sum = sfft.irfft2(spectrum * mask_spec, s=shape, workers=-1)
    local_sq = sfft.irfft2(sfft.rfft2(image * image, workers=-1) * mask_spec, s=shape, workers=-1)
    local_var = np.maximum(local_sq - local_sum * local_sum / n, 1e-12)
    best = np.full(shape, -np.inf, dtype=np.float32)
    for kernel in kernels:
        corr = sfft.irfft2(
            spectrum * np.conj(_centred_spectrum(kernel, shape)), s=shape, workers=-1
        )
        np.maximum(best, corr.astype(np.float32), out=best)
    return np.asarray(best / np.sqrt(local_var).astype(np.float32), dtype=np.float32)
