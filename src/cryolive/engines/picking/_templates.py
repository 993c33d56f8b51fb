"""Templates at the working pixel size: rotated, through the CTF, masked, normalised."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import fft as sfft
from scipy import ndimage

from cryolive.engines._resample import fourier_resize
from cryolive.engines.ctf import Optics, ctf_2d
from cryolive.engines.picking._result import MicrographCtf


def prepared_templates(
    templates: NDArray[np.float32],
    *,
    template_pixel_size_a: float,
    pixel_size_a: float,
    diameter_a: float,
    ctf: MicrographCtf | None,
    angles_deg: NDArray[np.float64],
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Kernels (n x angles, b, b) and their disc mask (b, b) at ``pixel_size_a``.

    Each template is resampled (Fourier), rotated, filtered by the CTF (or negated without
    one), then restricted to a disc of the particle's radius plus the CTF's delocalisation,
    made zero-mean inside it and scaled to unit norm.
    """
    b_in = templates.shape[1]
    b = max(8, 2 * round(b_in * template_pixel_size_a / pixel_size_a / 2))
    resized = np.stack([fourier_resize(t, (b, b)) for t in templates])
    if ctf is not None:
        optics = Optics(
            pixel_size_a=pixel_size_a,
            voltage_kv=ctf.voltage_kv,
            cs_mm=ctf.cs_mm,
            amplitude_contrast=ctf.amplitude_contrast,
        )
        transfer = ctf_2d(
            (b, b),
            optics=optics,
            defocus_u_a=ctf.defocus_u_a,
            defocus_v_a=ctf.defocus_v_a,
            astigmatism_angle_deg=ctf.astigmatism_angle_deg,
            phase_shift_deg=ctf.phase_shift_deg,
        )[:, : b // 2 + 1]
        # delocalisation: λ Δf k at the working Nyquist frequency
        spread_a = optics.wavelength_a * max(ctf.defocus_u_a, ctf.defocus_v_a) / (2 * pixel_size_a)
    else:
        transfer = None
        spread_a = 0.0
    radius = min(0.5 * b - 1, (0.5 * diameter_a + min(spread_a, 0.25 * diameter_a)) / pixel_size_a)
    yy, xx = np.mgrid[0:b, 0:b].astype(np.float32) - np.float32(b // 2)
    mask = (yy * yy + xx * xx <= radius * radius).astype(np.float32)
    kernels = []
    for template in resized:
        centred = template - np.float32(template.mean())
        for angle in angles_deg:
            rotated = ndimage.rotate(centred, float(angle), reshape=False, order=1, mode="constant")
            if transfer is None:
                seen = -rotated
            else:
                seen = sfft.irfft2(sfft.rfft2(rotated) * transfer, s=(b, b))
            kernel = (seen - seen[mask > 0].mean()) * mask
            norm = float(np.sqrt((kernel * kernel).sum()))
            if norm > 0:
                kernels.append((kernel / norm).astype(np.float32))
    if not kernels:
        raise ValueError("templates: all are constant inside the particle's disc")
    return np.stack(kernels), mask
