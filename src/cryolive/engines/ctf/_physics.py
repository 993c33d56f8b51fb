"""Electron optics: wavelength and the phase aberration of the contrast transfer function."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


def electron_wavelength_a(voltage_kv: float) -> float:
    """Relativistic wavelength of an electron accelerated through ``voltage_kv`` kilovolts, in Å.

    λ = h / sqrt(2 m₀ e V (1 + e V / (2 m₀ c²))); 300 kV gives 0.019687 Å.
    """
    if not voltage_kv > 0:
        raise ValueError(f"voltage_kv must be positive, got {voltage_kv}")
    volts = voltage_kv * 1e3
    return 12.264259 / math.sqrt(volts * (1.0 + 0.97847570e-6 * volts))


@dataclass(frozen=True)
class Optics:
    """What the microscope and the image fix.

    Attributes
    ----------
    pixel_size_a : float
        Pixel size of the micrograph, Å.
    voltage_kv : float
        Acceleration voltage, kV.
    cs_mm : float
        Spherical aberration, mm.
    amplitude_contrast : float
        Fraction of amplitude contrast, in [0, 1).
    """

    pixel_size_a: float = 1.0
    voltage_kv: float = 300.0
    cs_mm: float = 2.7
    amplitude_contrast: float = 0.07

    def __post_init__(self) -> None:
        if not self.pixel_size_a > 0:
            raise ValueError(f"pixel_size_a must be positive, got {self.pixel_size_a}")
        if not self.voltage_kv > 0:
            raise ValueError(f"voltage_kv must be positive, got {self.voltage_kv}")
        if not self.cs_mm >= 0:
            raise ValueError(f"cs_mm must be >= 0, got {self.cs_mm}")
        if not 0 <= self.amplitude_contrast < 1:
            raise ValueError(
                f"amplitude_contrast must lie in [0, 1), got {self.amplitude_contrast}"
            )

    @property
    def wavelength_a(self) -> float:
        return electron_wavelength_a(self.voltage_kv)


@dataclass(frozen=True)
class Aberration:
    """Per point constants of χ(k, θ), precomputed once for a set of frequencies."""

    k2: NDArray[np.float64]  # |k|², Å⁻²
    cos2: NDArray[np.float64]  # cos 2θ
    sin2: NDArray[np.float64]  # sin 2θ
    pi_lambda: float  # π λ, Å
    half_pi_cs_lambda3: float  # π/2 Cs λ³, Å³
    amplitude_phase: float  # arctan(A / sqrt(1 - A²)), rad

    @classmethod
    def of(cls, kx: NDArray[np.float64], ky: NDArray[np.float64], optics: Optics) -> Aberration:
        """Constants for frequencies ``kx``, ``ky`` (Å⁻¹; θ = atan2(ky, kx))."""
        k2 = kx * kx + ky * ky
        theta2 = 2.0 * np.arctan2(ky, kx)
        lam = optics.wavelength_a
        amp = optics.amplitude_contrast
        return cls(
            k2=k2,
            cos2=np.cos(theta2),
            sin2=np.sin(theta2),
            pi_lambda=math.pi * lam,
            half_pi_cs_lambda3=0.5 * math.pi * optics.cs_mm * 1e7 * lam**3,
            amplitude_phase=math.atan2(amp, math.sqrt(1.0 - amp * amp)),
        )

    def chi(
        self, mean_defocus_a: float, a1: float, a2: float, phase_shift_rad: float
    ) -> NDArray[np.float64]:
        """χ = π λ Δf(θ) k² - π/2 Cs λ³ k⁴ + φ + w, with Δf(θ) = mean + a1 cos 2θ + a2 sin 2θ.

        ``a1``, ``a2`` (Å) are half the astigmatism times cos/sin of twice its angle.
        """
        defocus = mean_defocus_a + a1 * self.cos2 + a2 * self.sin2
        return self.k2 * (self.pi_lambda * defocus - self.half_pi_cs_lambda3 * self.k2) + (
            phase_shift_rad + self.amplitude_phase
        )


def astigmatism_components(
    defocus_u_a: float, defocus_v_a: float, angle_deg: float
) -> tuple[float, float, float]:
    """(mean, a1, a2) of χ from U, V and the angle of U (degrees from +x towards +y)."""
    half = 0.5 * (defocus_u_a - defocus_v_a)
    two_angle = math.radians(2.0 * angle_deg)
    return (
        0.5 * (defocus_u_a + defocus_v_a),
        half * math.cos(two_angle),
        half * math.sin(two_angle),
    )


def defocus_uv(mean_a: float, a1: float, a2: float) -> tuple[float, float, float]:
    """(U, V, angle in degrees [0, 180)) from (mean, a1, a2); U ≥ V."""
    half = math.hypot(a1, a2)
    angle = math.degrees(0.5 * math.atan2(a2, a1)) % 180.0 if half > 0 else 0.0
    return mean_a + half, mean_a - half, angle


def ctf_2d(
    shape: tuple[int, int],
    *,
    optics: Optics,
    defocus_u_a: float,
    defocus_v_a: float,
    astigmatism_angle_deg: float = 0.0,
    phase_shift_deg: float = 0.0,
) -> NDArray[np.float32]:
    """The CTF, -sin χ, on the unshifted full FFT grid of an image of ``shape``.

    Parameters
    ----------
    shape : (ny, nx)
        Image shape, pixels.
    optics : Optics
        Pixel size (Å), voltage (kV), Cs (mm), amplitude contrast.
    defocus_u_a, defocus_v_a : float
        Defocus along the astigmatism axis and across it, Å; positive is underfocus.
    astigmatism_angle_deg : float
        Angle of the U axis, degrees, from +x (array axis 1) towards +y (array axis 0).
    phase_shift_deg : float
        Additional phase shift (phase plate), degrees, added to χ.

    Returns
    -------
    ctf : (ny, nx) float32
    """
    ny, nx = shape
    if ny < 1 or nx < 1:
        raise ValueError(f"shape must be positive, got {shape}")
    ky = np.fft.fftfreq(ny, d=optics.pixel_size_a)[:, None]
    kx = np.fft.fftfreq(nx, d=optics.pixel_size_a)[None, :]
    kx_grid, ky_grid = np.broadcast_arrays(kx, ky)
    ab = Aberration.of(kx_grid, ky_grid, optics)
    mean, a1, a2 = astigmatism_components(defocus_u_a, defocus_v_a, astigmatism_angle_deg)
    chi = ab.chi(mean, a1, a2, math.radians(phase_shift_deg))
    return (-np.sin(chi)).astype(np.float32)
