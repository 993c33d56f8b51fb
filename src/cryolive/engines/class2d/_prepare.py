"""Particles at the working pixel size, multiplied by their own CTF, and their CTF² by ring."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import fft as sfft

from cryolive.engines.class2d._frc import ring_index
from cryolive.engines.class2d._geometry import crop_spectrum
from cryolive.engines.class2d._types import ParticleSet
from cryolive.engines.ctf import Aberration, Optics, astigmatism_components

CHUNK = 2048


@dataclass(frozen=True)
class Prepared:
    """Particles ready to align and average.

    Attributes
    ----------
    images : (n, b, b) float32
        CTF·X: each particle at the working pixel size multiplied, in Fourier space, by its own
        CTF. Correlating it with a class average is correlating the raw particle with the
        average seen through the particle's CTF; summing it gives the Wiener numerator.
    ctf2_rings : (n, b/2 + 1) float32
        Each particle's CTF² averaged over rings: the Wiener denominator.
    pixel_size_a : float
        Working pixel size, Å.
    """

    images: NDArray[np.float32]
    ctf2_rings: NDArray[np.float32]
    pixel_size_a: float

    @property
    def box_px(self) -> int:
        return int(self.images.shape[-1])


def working_box(box_px: int, pixel_size_a: float, resolution_a: float | None) -> int:
    """Even working box: at most 64 pixels, or fine enough for ``resolution_a`` at Nyquist."""
    if resolution_a is None:
        return min(box_px, 64) // 2 * 2
    wanted = 2 * math.ceil(box_px * pixel_size_a / resolution_a)
    return max(16, min(box_px // 2 * 2, wanted))


def prepare(particles: ParticleSet, box_px: int) -> Prepared:
    """Fourier-crop to ``box_px`` and multiply by each particle's CTF."""
    b = particles.box_px
    pixel = particles.pixel_size_a * b / box_px
    optics = Optics(
        pixel_size_a=pixel,
        voltage_kv=particles.voltage_kv,
        cs_mm=particles.cs_mm,
        amplitude_contrast=particles.amplitude_contrast,
    )
    ky = np.fft.fftfreq(box_px, d=pixel)[:, None]
    kx = np.fft.rfftfreq(box_px, d=pixel)[None, :]
    kx_grid, ky_grid = np.broadcast_arrays(kx, ky)
    ab = Aberration.of(kx_grid, ky_grid, optics)
    rings = ring_index(box_px)
    n_rings = box_px // 2 + 1
    inside = rings < n_rings
    counts = np.bincount(rings[inside], minlength=n_rings).astype(np.float64)
    n = len(particles)
    images = np.empty((n, box_px, box_px), dtype=np.float32)
    ctf2 = np.empty((n, n_rings), dtype=np.float32)
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        spectrum = sfft.rfft2(particles.images[start:stop], workers=-1)
        cropped = crop_spectrum(spectrum, b, box_px)
        parts = [
            astigmatism_components(u, v, a)
            for u, v, a in zip(
                particles.defocus_u_a[start:stop],
                particles.defocus_v_a[start:stop],
                particles.astigmatism_angle_deg[start:stop],
                strict=True,
            )
        ]
        mean, a1, a2 = (np.asarray(p)[:, None, None] for p in zip(*parts, strict=True))
        defocus = mean + a1 * ab.cos2[None] + a2 * ab.sin2[None]
        chi = ab.k2[None] * (ab.pi_lambda * defocus - ab.half_pi_cs_lambda3 * ab.k2[None])
        # The transfer of an inverted (protein-bright) image: sin χ, i.e. -ctf_2d.
        ctf = np.sin(chi + ab.amplitude_phase).astype(np.float32)
        out = sfft.irfft2(cropped * ctf, s=(box_px, box_px), workers=-1)
        images[start:stop] = out * np.float32(box_px * box_px / (b * b))
        squared = (ctf * ctf).reshape(stop - start, -1)[:, inside.ravel()]
        for i in range(stop - start):
            ctf2[start + i] = np.bincount(
                rings[inside], weights=squared[i], minlength=n_rings
            ) / np.maximum(counts, 1)
    return Prepared(images=images, ctf2_rings=ctf2, pixel_size_a=pixel)
