"""Half maps with a known answer: a map of point atoms (flat spectrum, as a protein's beyond
10 Å), blurred by a known B-factor, plus independent white noise in each half."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

BOX, PIXEL_A = 64, 1.5


@dataclass(frozen=True)
class Halves:
    truth: NDArray[np.float64]  # the blurred map, without noise
    half1: NDArray[np.float64]
    half2: NDArray[np.float64]
    pixel_size_a: float
    bfactor_a2: float


def point_atoms(box: int, rng: np.random.Generator, atoms: int = 3000) -> NDArray[np.float64]:
    """``atoms`` point masses at voxel centres inside a sphere of 0.3 box radius."""
    vol = np.zeros((box, box, box))
    r = 0.3 * box
    pts = rng.uniform(-r, r, size=(atoms * 3, 3))
    pts = pts[np.linalg.norm(pts, axis=1) <= r][:atoms]
    idx = np.rint(pts).astype(int) + box // 2
    np.add.at(vol, tuple(idx.T), rng.uniform(0.5, 1.5, len(idx)))
    return vol


def blur(vol: NDArray[np.float64], pixel_size_a: float, bfactor_a2: float) -> NDArray[np.float64]:
    """Multiply |F| by exp(-B/4 * 1/d²)."""
    box = vol.shape[0]
    kz = np.fft.fftfreq(box, d=pixel_size_a)[:, None, None]
    ky = np.fft.fftfreq(box, d=pixel_size_a)[None, :, None]
    kx = np.fft.rfftfreq(box, d=pixel_size_a)[None, None, :]
    f = np.fft.rfftn(vol) * np.exp(-bfactor_a2 / 4 * (kx**2 + ky**2 + kz**2))
    return np.fft.irfftn(f, s=vol.shape, axes=(0, 1, 2))


def make_halves(bfactor_a2: float, noise: float, seed: int = 1) -> Halves:
    rng = np.random.default_rng(seed)
    truth = blur(point_atoms(BOX, rng), PIXEL_A, bfactor_a2)
    sigma = noise * truth.std()
    return Halves(
        truth=truth,
        half1=truth + rng.normal(0.0, sigma, truth.shape),
        half2=truth + rng.normal(0.0, sigma, truth.shape),
        pixel_size_a=PIXEL_A,
        bfactor_a2=bfactor_a2,
    )
