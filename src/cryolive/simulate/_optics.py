"""Electron optics: wavelength and the contrast transfer function on an rfft2 grid."""

from __future__ import annotations

import numpy as np


def electron_wavelength_a(voltage_kv: float) -> float:
    """Relativistic electron wavelength (Å) at ``voltage_kv``: 0.0197 Å at 300 kV."""
    if voltage_kv <= 0:
        raise ValueError(f"voltage_kv: must be positive, got {voltage_kv}")
    volts = voltage_kv * 1e3
    return float(12.2642598 / np.sqrt(volts * (1.0 + 0.978466e-6 * volts)))


def rfft_frequencies(shape: tuple[int, int], pixel_size_a: float) -> tuple[np.ndarray, np.ndarray]:
    """Spatial frequencies (1/Å) of an rfft2 grid: ``ky`` (ny, 1) and ``kx`` (1, nx//2+1)."""
    ny, nx = shape
    ky = np.fft.fftfreq(ny, d=pixel_size_a).astype(np.float32)[:, None]
    kx = np.fft.rfftfreq(nx, d=pixel_size_a).astype(np.float32)[None, :]
    return ky, kx


def ctf_phase_rad(
    k2: np.ndarray,
    angle_rad: np.ndarray,
    *,
    defocus_u_a: float,
    defocus_v_a: float,
    astigmatism_angle_deg: float,
    voltage_kv: float,
    cs_mm: float,
    phase_shift_deg: float,
) -> np.ndarray:
    """Aberration phase chi (rad) at squared frequency ``k2`` (1/Å²) and azimuth ``angle_rad``.

    chi = pi * lambda * defocus(angle) * k² - pi/2 * Cs * lambda³ * k⁴ + phase shift, with
    defocus(angle) = (U + V)/2 + (U - V)/2 * cos(2 (angle - astigmatism angle)); positive
    defocus is underfocus (the CTFFIND convention, Rohou & Grigorieff 2015,
    doi:10.1016/j.jsb.2015.08.008).
    """
    lam = electron_wavelength_a(voltage_kv)
    ast = np.deg2rad(astigmatism_angle_deg)
    mean = 0.5 * (defocus_u_a + defocus_v_a)
    half = 0.5 * (defocus_u_a - defocus_v_a)
    defocus = mean + half * np.cos(2.0 * (angle_rad - ast))
    cs_a = cs_mm * 1e7
    chi = np.pi * lam * defocus * k2 - 0.5 * np.pi * cs_a * lam**3 * k2 * k2
    return np.asarray(chi + np.deg2rad(phase_shift_deg), dtype=np.float32)


def ctf_2d(
    shape: tuple[int, int],
    *,
    pixel_size_a: float,
    defocus_u_a: float,
    defocus_v_a: float,
    astigmatism_angle_deg: float = 0.0,
    voltage_kv: float = 300.0,
    cs_mm: float = 2.7,
    amplitude_contrast: float = 0.07,
    phase_shift_deg: float = 0.0,
    bfactor_a2: float = 0.0,
) -> np.ndarray:
    """CTF of a weak phase object on the rfft2 grid of an image of ``shape``.

    Returns
    -------
    ctf : (ny, nx//2+1) float32
        -(sqrt(1 - A²) sin chi + A cos chi) * exp(-B k² / 4); zero where
        chi + arctan(A / sqrt(1 - A²)) is a multiple of pi.
    """
    if pixel_size_a <= 0:
        raise ValueError(f"pixel_size_a: must be positive, got {pixel_size_a}")
    if not 0 <= amplitude_contrast < 1:
        raise ValueError(f"amplitude_contrast: must be in [0, 1), got {amplitude_contrast}")
    ky, kx = rfft_frequencies(shape, pixel_size_a)
    k2 = kx * kx + ky * ky
    angle = np.arctan2(ky, kx)
    chi = ctf_phase_rad(
        k2,
        angle,
        defocus_u_a=defocus_u_a,
        defocus_v_a=defocus_v_a,
        astigmatism_angle_deg=astigmatism_angle_deg,
        voltage_kv=voltage_kv,
        cs_mm=cs_mm,
        phase_shift_deg=phase_shift_deg,
    )
    a = amplitude_contrast
    ctf = -(np.sqrt(1 - a * a) * np.sin(chi) + a * np.cos(chi))
    if bfactor_a2:
        ctf *= np.exp(-bfactor_a2 * k2 / 4.0)
    return np.asarray(ctf, dtype=np.float32)


def critical_exposure_e_per_a2(k: np.ndarray) -> np.ndarray:
    """Critical exposure (e/Å²) at spatial frequency ``k`` (1/Å), 300 kV.

    N_e(k) = 0.245 k^-1.665 + 2.81 (Grant & Grigorieff 2015, doi:10.7554/eLife.06980);
    the signal left after an exposure N is exp(-N / (2 N_e)).
    """
    safe = np.maximum(k, np.float32(1e-4))
    return np.asarray(0.245 * safe**-1.665 + 2.81, dtype=np.float32)
