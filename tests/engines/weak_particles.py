"""An independent generator of hard picking micrographs: weak particles on textured ice.

Written apart from ``cryolive.simulate`` (and sharing none of its code or conventions) so that
the picker and the simulator cannot share a mistake. One micrograph is made thus:

- particles: blobs of 25-35 Å diameter, each the projected thickness of a sphere plus two to
  four smaller spheres off its centre (a lumpy globule), at random non-overlapping positions;
- weak-phase object: phase φ = ``phase_per_a`` x projected protein thickness (Å), about
  0.003 rad/Å (protein against vitreous ice);
- CTF, positive defocus is underfocus: χ(k) = π λ Δf k² - π/2 Cs λ³ k⁴, CTF(k) =
  -(√(1 - A²) sin χ + A cos χ), and the image is 1 + 2 F⁻¹[CTF · F[φ]] (protein dark at
  underfocus, as recorded);
- low-frequency ice texture: Gaussian random field with no power finer than ~250 Å,
  ``ice_contrast`` (relative sd) multiplying the image;
- counts: each of ``n_frames`` frames is Poisson at ``dose_per_frame`` (about 1 e/px) times the
  image, and the frames are summed (a motion-corrected sum with no motion).

Not a test module: loaded by the picking tests and by ``bench/picking_relion.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class WeakMicrograph:
    """A micrograph (y, x) float32 in counts, and the particles' centres (n, 2) as (y, x) px."""

    image: NDArray[np.float32]
    centres_yx: NDArray[np.float64]
    diameters_a: NDArray[np.float64]
    pixel_size_a: float
    defocus_a: float


def _wavelength_a(kv: float) -> float:
    volts = kv * 1e3
    return 12.2643 / math.sqrt(volts * (1.0 + 0.978466e-6 * volts))


def _positions(
    rng: np.random.Generator, shape: tuple[int, int], n: int, gap_px: float, margin_px: float
) -> NDArray[np.float64]:
    kept: list[tuple[float, float]] = []
    for _ in range(50 * n):
        if len(kept) == n:
            break
        y = rng.uniform(margin_px, shape[0] - margin_px)
        x = rng.uniform(margin_px, shape[1] - margin_px)
        if all((y - a) ** 2 + (x - b) ** 2 >= gap_px**2 for a, b in kept):
            kept.append((y, x))
    return np.array(kept, dtype=np.float64).reshape(-1, 2)


def _thickness(
    rng: np.random.Generator,
    shape: tuple[int, int],
    centres: NDArray[np.float64],
    diameters_px: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Projected thickness (px) of lumpy globules."""
    out = np.zeros(shape)
    for (cy, cx), d in zip(centres, diameters_px, strict=True):
        half = int(d) + 2
        y0, x0 = int(cy) - half, int(cx) - half
        yy, xx = np.mgrid[y0 : y0 + 2 * half + 1, x0 : x0 + 2 * half + 1].astype(np.float64)
        spheres = [(cy, cx, 0.36 * d)]
        for _ in range(rng.integers(2, 5)):
            angle = rng.uniform(0, 2 * np.pi)
            r = 0.22 * d
            spheres.append((cy + r * np.sin(angle), cx + r * np.cos(angle), 0.24 * d))
        patch = np.zeros(yy.shape)
        for sy, sx, radius in spheres:
            rho2 = (yy - sy) ** 2 + (xx - sx) ** 2
            patch = np.maximum(patch, 2.0 * np.sqrt(np.clip(radius**2 - rho2, 0.0, None)))
        ys = slice(max(y0, 0), min(y0 + 2 * half + 1, shape[0]))
        xs = slice(max(x0, 0), min(x0 + 2 * half + 1, shape[1]))
        out[ys, xs] += patch[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
    return out


def _ice_texture(
    rng: np.random.Generator, shape: tuple[int, int], pixel_size_a: float, scale_a: float
) -> NDArray[np.float64]:
    """Unit-sd Gaussian random field with power only at spacings coarser than ~``scale_a``."""
    ky = np.fft.fftfreq(shape[0], d=pixel_size_a)[:, None]
    kx = np.fft.rfftfreq(shape[1], d=pixel_size_a)[None, :]
    envelope = np.exp(-((ky**2 + kx**2) * scale_a**2))
    noise = np.fft.rfft2(rng.standard_normal(shape))
    field = np.fft.irfft2(noise * envelope, s=shape)
    return np.asarray(field / field.std(), dtype=np.float64)


def weak_micrograph(
    rng: np.random.Generator,
    *,
    shape: tuple[int, int] = (1024, 1024),
    pixel_size_a: float = 1.0,
    n_particles: int = 120,
    diameter_range_a: tuple[float, float] = (25.0, 35.0),
    defocus_a: float = 12000.0,
    voltage_kv: float = 300.0,
    cs_mm: float = 2.7,
    amplitude_contrast: float = 0.07,
    phase_per_a: float = 0.003,
    ice_contrast: float = 0.04,
    ice_scale_a: float = 250.0,
    dose_per_frame: float = 1.0,
    n_frames: int = 30,
) -> WeakMicrograph:
    """One micrograph with ``n_particles`` weak particles (fewer if they do not fit apart)."""
    lo, hi = diameter_range_a
    centres = _positions(rng, shape, n_particles, gap_px=1.3 * hi / pixel_size_a,
                         margin_px=hi / pixel_size_a)  # fmt: skip
    diameters = rng.uniform(lo, hi, len(centres))
    phase = phase_per_a * pixel_size_a * _thickness(rng, shape, centres, diameters / pixel_size_a)
    lam = _wavelength_a(voltage_kv)
    ky = np.fft.fftfreq(shape[0], d=pixel_size_a)[:, None]
    kx = np.fft.rfftfreq(shape[1], d=pixel_size_a)[None, :]
    k2 = ky**2 + kx**2
    chi = np.pi * lam * defocus_a * k2 - 0.5 * np.pi * cs_mm * 1e7 * lam**3 * k2**2
    ctf = -(math.sqrt(1.0 - amplitude_contrast**2) * np.sin(chi) + amplitude_contrast * np.cos(chi))
    contrast = np.fft.irfft2(np.fft.rfft2(phase) * ctf, s=shape)
    ice = 1.0 + ice_contrast * _ice_texture(rng, shape, pixel_size_a, ice_scale_a)
    intensity = np.clip((1.0 + 2.0 * contrast) * ice, 0.0, None)
    counts = np.zeros(shape, dtype=np.float32)
    for _ in range(n_frames):
        counts += rng.poisson(dose_per_frame * intensity).astype(np.float32)
    return WeakMicrograph(
        image=counts,
        centres_yx=centres,
        diameters_a=diameters,
        pixel_size_a=pixel_size_a,
        defocus_a=defocus_a,
    )
