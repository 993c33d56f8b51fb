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
    ky: np.ndarray,
    kx: np.ndarray,
    *,
    defocus_u_a: float,
    defocus_v_a: float,
    astigmatism_angle_deg: float,
    voltage_kv: float,
    cs_mm: float,
    phase_shift_deg: float,
) -> np.ndarray:
    """Aberration phase chi (rad) at spatial frequencies ``ky``, ``kx`` (1/Å, broadcastable).

    chi = pi * lambda * defocus(angle) * k² - pi/2 * Cs * lambda³ * k⁴ + phase shift, with
    defocus(angle) = (U + V)/2 + (U - V)/2 * cos(2 (angle - astigmatism angle)), the angle
    measured from the x axis; positive defocus is underfocus (the CTFFIND convention, Rohou &
    Grigorieff 2015, doi:10.1016/j.jsb.2015.08.008). The astigmatic term is evaluated as
    k² cos(2(angle - a)) = (kx² - ky²) cos 2a + 2 kx ky sin 2a, without trigonometry per pixel.
    """
    lam = electron_wavelength_a(voltage_kv)
    ast = np.deg2rad(astigmatism_angle_deg)
    mean = 0.5 * (defocus_u_a + defocus_v_a)
    half = 0.5 * (defocus_u_a - defocus_v_a)
    kx2, ky2 = kx * kx, ky * ky
    k2 = kx2 + ky2
    defocus_k2 = mean * k2
    if half:
        defocus_k2 = defocus_k2 + half * (
            (kx2 - ky2) * np.float32(np.cos(2 * ast)) + 2 * kx * ky * np.float32(np.sin(2 * ast))
        )
    cs_a = cs_mm * 1e7
    chi = np.float32(np.pi * lam) * defocus_k2 - np.float32(0.5 * np.pi * cs_a * lam**3) * k2 * k2
    return np.asarray(chi + np.float32(np.deg2rad(phase_shift_deg)), dtype=np.float32)


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
    chi = ctf_phase_rad(
        ky,
        kx,
        defocus_u_a=defocus_u_a,
        defocus_v_a=defocus_v_a,
        astigmatism_angle_deg=astigmatism_angle_deg,
        voltage_kv=voltage_kv,
        cs_mm=cs_mm,
        phase_shift_deg=phase_shift_deg,
    )
    a = amplitude_contrast
    chi += np.float32(np.arcsin(a))  # sqrt(1 - A²) sin chi + A cos chi = sin(chi + asin A)
    ctf = -np.sin(chi)
    if bfactor_a2:
        ctf *= np.exp(np.float32(-bfactor_a2 / 4.0) * k2)
    return np.asarray(ctf, dtype=np.float32)


def critical_exposure_e_per_a2(k: np.ndarray) -> np.ndarray:
    """Critical exposure (e/Å²) at spatial frequency ``k`` (1/Å), 300 kV.

    N_e(k) = 0.245 k^-1.665 + 2.81 (Grant & Grigorieff 2015, doi:10.7554/eLife.06980);
    the signal left after an exposure N is exp(-N / (2 N_e)).
    """
    safe = np.maximum(k, np.float32(1e-4))
    return np.asarray(0.245 * safe**-1.665 + 2.81, dtype=np.float32)
