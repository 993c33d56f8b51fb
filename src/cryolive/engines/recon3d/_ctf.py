"""The CTF of each particle as RELION applies it to a map's projections (rfft2 layout).

Particles are white (contrast inverted at extraction) and maps positive, so the CTF is
+sin χ with χ = π λ Δf(θ) k² - π/2 Cs λ³ k⁴ + arcsin(amplitude contrast): positive at low
frequency for underfocus (positive Δf), as RELION's own.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from cryolive.engines.ctf import electron_wavelength_a
from cryolive.engines.recon3d._fourier import frequency_grid


def particle_ctf(
    box: int,
    pixel_size_a: float,
    defocus: NDArray[np.floating],
    *,
    voltage_kv: float = 300.0,
    cs_mm: float = 2.7,
    amplitude_contrast: float = 0.1,
    bfactor: float = 0.0,
) -> NDArray[np.float32]:
    """(n, b, b//2+1) CTFs for ``defocus`` (n, 3): U, V (Å, positive underfocus), angle (deg).

    ``bfactor`` (Å²) multiplies by exp(-B k² / 4), as an envelope.
    """
    d = np.asarray(defocus, dtype=np.float64).reshape(-1, 3)
    if pixel_size_a <= 0:
        raise ValueError(f"pixel_size_a must be positive, got {pixel_size_a}")
    ky_i, kx_i = frequency_grid(box)
    kx = kx_i / (box * pixel_size_a)
    ky = ky_i / (box * pixel_size_a)
    k2 = kx * kx + ky * ky
    theta = np.arctan2(ky, kx)
    lam = electron_wavelength_a(voltage_kv)
    amp = math.atan2(amplitude_contrast, math.sqrt(1.0 - amplitude_contrast**2))
    mean = 0.5 * (d[:, 0] + d[:, 1])
    half = 0.5 * (d[:, 0] - d[:, 1])
    ang = np.radians(d[:, 2])
    defocus_theta = mean[:, None, None] + half[:, None, None] * np.cos(
        2.0 * (theta[None] - ang[:, None, None])
    )
    chi = (
        math.pi * lam * defocus_theta * k2[None]
        - 0.5 * math.pi * cs_mm * 1e7 * lam**3 * (k2 * k2)[None]
        + amp
    )
    ctf = np.sin(chi)
    if bfactor:
        ctf *= np.exp(-bfactor * k2 / 4.0)[None]
    return ctf.astype(np.float32)
