"""Test micrographs with a planted CTF and ice thickness (until the simulator lands).

A white-noise weak-phase object is filtered by an astigmatic CTF and a B-factor envelope in
Fourier space, attenuated by ice (exp(-t/λ) of the incident dose, t/λ a smooth map), and
counted (Poisson). The CTF here is written out on its own, independently of the engine's.
Not a test module: loaded by ``conftest.py`` and by ``bench/ctf.py``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray


def wavelength_a(voltage_kv: float) -> float:
    # h / sqrt(2 m0 e V (1 + e V / 2 m0 c^2)), h, m0, e, c in SI; result in Å.
    h, m0, e, c = 6.62607015e-34, 9.1093837015e-31, 1.602176634e-19, 2.99792458e8
    volts = voltage_kv * 1e3
    return 1e10 * h / math.sqrt(2 * m0 * e * volts * (1 + e * volts / (2 * m0 * c * c)))


def planted_ctf(
    shape: tuple[int, int],
    *,
    pixel_size_a: float,
    voltage_kv: float,
    cs_mm: float,
    amplitude_contrast: float,
    defocus_u_a: float,
    defocus_v_a: float,
    angle_deg: float,
    phase_shift_deg: float,
) -> NDArray[np.float64]:
    """-sin(χ) on the full unshifted FFT grid; U axis at ``angle_deg`` from +x towards +y."""
    fy = np.fft.fftfreq(shape[0], pixel_size_a)[:, None]
    fx = np.fft.fftfreq(shape[1], pixel_size_a)[None, :]
    s2 = fx**2 + fy**2
    azimuth = np.arctan2(fy, fx)
    dz = defocus_v_a + (defocus_u_a - defocus_v_a) * np.cos(azimuth - math.radians(angle_deg)) ** 2
    lam = wavelength_a(voltage_kv)
    gamma = (
        math.pi * lam * dz * s2
        - 0.5 * math.pi * (cs_mm * 1e7) * lam**3 * s2**2
        + math.radians(phase_shift_deg)
        + math.asin(amplitude_contrast)
    )
    return -np.sin(gamma)


def smooth_map(rng: np.random.Generator, shape: tuple[int, int], scale_px: float) -> NDArray:
    """A smooth random field with zero mean and unit standard deviation."""
    noise = np.fft.fft2(rng.standard_normal(shape))
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.fftfreq(shape[1])[None, :]
    field = np.fft.ifft2(noise * np.exp(-((fx**2 + fy**2) * scale_px**2))).real
    return (field - field.mean()) / field.std()


def micrograph(
    rng: np.random.Generator,
    *,
    shape: tuple[int, int] = (1024, 1024),
    pixel_size_a: float = 2.0,
    voltage_kv: float = 300.0,
    cs_mm: float = 2.7,
    amplitude_contrast: float = 0.07,
    defocus_u_a: float = 15000.0,
    defocus_v_a: float = 15000.0,
    angle_deg: float = 0.0,
    phase_shift_deg: float = 0.0,
    contrast: float = 0.1,
    bfactor_a2: float = 50.0,
    dose_e_per_px: float = 40.0,
    ice: NDArray | float = 0.0,
) -> NDArray[np.float32]:
    """Counts (y, x) float32 of a weak-phase object seen through the planted CTF and ice.

    ``ice`` is t/λ (a scalar or a (y, x) map): the incident dose is attenuated by exp(-ice).
    """
    obj = np.fft.fft2(rng.standard_normal(shape))
    ctf = planted_ctf(
        shape,
        pixel_size_a=pixel_size_a,
        voltage_kv=voltage_kv,
        cs_mm=cs_mm,
        amplitude_contrast=amplitude_contrast,
        defocus_u_a=defocus_u_a,
        defocus_v_a=defocus_v_a,
        angle_deg=angle_deg,
        phase_shift_deg=phase_shift_deg,
    )
    fy = np.fft.fftfreq(shape[0], pixel_size_a)[:, None]
    fx = np.fft.fftfreq(shape[1], pixel_size_a)[None, :]
    envelope = np.exp(-bfactor_a2 * (fx**2 + fy**2) / 4)
    signal = np.fft.ifft2(obj * ctf * envelope).real
    intensity = (
        dose_e_per_px * np.exp(-np.asarray(ice)) * np.clip(1 + 2 * contrast * signal, 0, None)
    )
    return rng.poisson(intensity).astype(np.float32)
