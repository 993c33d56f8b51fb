"""An independent movie generator for the motion tests and ``bench/motion_accuracy.py``.

Written apart from ``cryolive.simulate`` (other drift model, other specimen, other CTF code)
so that the engine and the simulator cannot share a mistake. Not a test module: loaded by
``conftest.py`` and by the bench script.

A movie is a weak-phase image of randomly placed particles (clusters of Gaussian blobs
25-35 Å across, weak contrast) on a low-frequency ice texture, through a CTF, moved by a
smooth drift and recorded as Poisson counts:

- drift per axis: a fast exponential settle ``a (1 - exp(-t / tau))``, a slow linear creep
  ``c t`` and a small wobble ``w sin(2 pi t / T + phi)``, with other values in x and y (a few
  px in all);
- the frame content is rendered on a canvas with a margin, moved with Fourier phase ramps,
  then cropped: frames have real edges (nothing wraps around);
- counts ~ Poisson(dose_per_px x intensity), about 1 e/px/frame by default.

Conventions: ``drift_px[t] = (dy, dx)`` is how far the content of frame ``t`` moved relative
to frame 0 (row 0 at the top of the array, x along columns): a feature at (y, x) in frame 0 is
at (y + dy, x + dx) in frame t.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import fft as sfft

_MARGIN_PX = 32


@dataclass(frozen=True)
class IndependentMovie:
    frames: NDArray[np.uint8]  # (n, y, x) counts
    drift_px: NDArray[np.float64]  # (n, 2) (dy, dx) of frame t's content, row 0 zero
    pixel_size_a: float
    dose_per_px: float  # mean e/px per frame

    @property
    def dose_per_frame_e_per_a2(self) -> float:
        return self.dose_per_px / self.pixel_size_a**2


def planted_drift(rng: np.random.Generator, n_frames: int) -> NDArray[np.float64]:
    """(n, 2) smooth drift (px), not symmetric in x and y, row 0 zero."""
    t = np.arange(n_frames, dtype=np.float64)
    axes = []
    for _ in range(2):
        settle = rng.uniform(1.0, 2.5) * rng.choice([-1.0, 1.0])
        tau = rng.uniform(1.5, 4.0)
        creep = rng.uniform(0.02, 0.06) * rng.choice([-1.0, 1.0])
        wobble, period, phase = rng.uniform(0.1, 0.3), rng.uniform(6.0, 14.0), rng.uniform(0, 6.3)
        path = (
            settle * (1 - np.exp(-t / tau))
            + creep * t
            + wobble * np.sin(2 * np.pi * t / period + phase)
        )
        axes.append(path - path[0])
    return np.stack(axes, axis=1)


def _ctf(shape: tuple[int, int], pixel_size_a: float, defocus_a: float) -> NDArray[np.float64]:
    """Weak-phase CTF -(sin chi + 0.07 cos chi) at 300 kV, Cs 2.7 mm, rfft2 layout."""
    wavelength = 12.2643 / np.sqrt(300e3 * (1 + 0.978466e-6 * 300e3))  # Å
    ky = np.fft.fftfreq(shape[0], d=pixel_size_a)[:, None]
    kx = np.fft.rfftfreq(shape[1], d=pixel_size_a)[None, :]
    k2 = ky * ky + kx * kx
    cs = 2.7e7
    chi = np.pi * wavelength * defocus_a * k2 - 0.5 * np.pi * cs * wavelength**3 * k2 * k2
    return np.asarray(-(np.sin(chi) + 0.07 * np.cos(chi)))


def _specimen(
    rng: np.random.Generator, shape: tuple[int, int], pixel_size_a: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Projected phase (radians, small) of particles on a low-frequency ice texture, and the
    ice texture alone (its thickness also takes a little amplitude away)."""
    ny, nx = shape
    image = np.zeros(shape)
    # Particles: clusters of 6-10 Gaussian blobs, 25-35 Å across, at a fair packing density.
    area_a2 = ny * nx * pixel_size_a**2
    count = int(area_a2 / (60.0**2))
    yy, xx = np.mgrid[-24:25, -24:25].astype(np.float64)
    for _ in range(count):
        diameter_px = rng.uniform(25.0, 35.0) / pixel_size_a
        stamp = np.zeros_like(yy)
        for _ in range(rng.integers(6, 11)):
            oy, ox = rng.normal(0.0, diameter_px / 5.0, size=2)
            sigma = rng.uniform(0.08, 0.15) * diameter_px
            stamp += np.exp(-((yy - oy) ** 2 + (xx - ox) ** 2) / (2 * sigma * sigma))
        stamp *= rng.uniform(0.10, 0.16) / stamp.max()  # peak phase (rad): weak contrast
        y, x = int(rng.integers(24, ny - 25)), int(rng.integers(24, nx - 25))
        image[y - 24 : y + 25, x - 24 : x + 25] += stamp
    # Ice: white noise low-passed to ~200 Å, weak.
    spectrum = sfft.rfft2(rng.normal(size=shape))
    ky = np.fft.fftfreq(ny, d=pixel_size_a)[:, None]
    kx = np.fft.rfftfreq(nx, d=pixel_size_a)[None, :]
    spectrum *= np.exp(-(ky * ky + kx * kx) * (200.0**2) / 2.0)
    ice = sfft.irfft2(spectrum, s=shape)
    ice *= 0.08 / max(float(ice.std()), 1e-12)
    return np.asarray(image + ice), ice


def independent_movie(
    seed: int,
    *,
    shape: tuple[int, int] = (512, 512),
    n_frames: int = 24,
    pixel_size_a: float = 1.0,
    dose_per_px: float = 1.0,
    defocus_a: float = 15000.0,
    ice_amplitude: float = 0.03,
    gain: NDArray[np.float64] | None = None,
    workers: int = 1,
) -> IndependentMovie:
    """One movie (see the module docstring); reproducible from ``seed``. With a multiplicative
    ``gain`` (y, x), counts are drawn from intensity / gain, so that counts x gain is the
    image."""
    rng = np.random.default_rng(seed)
    drift = planted_drift(rng, n_frames)
    canvas = (shape[0] + 2 * _MARGIN_PX, shape[1] + 2 * _MARGIN_PX)
    phase, ice = _specimen(rng, canvas, pixel_size_a)
    # Weak-phase image: I = 1 + 2 * (CTF-filtered phase), amplitude contrast in the CTF; ice
    # thickness variations scatter a little more out of the image (amplitude, ~3 %).
    spectrum = sfft.rfft2(phase, workers=workers) * (2.0 * _ctf(canvas, pixel_size_a, defocus_a))
    spectrum -= sfft.rfft2(ice * (ice_amplitude / 0.08), workers=workers)
    ky = np.fft.fftfreq(canvas[0])[:, None]
    kx = np.fft.rfftfreq(canvas[1])[None, :]
    # The detector's MTF-like envelope: a little softening towards Nyquist.
    spectrum *= np.exp(-(ky * ky + kx * kx) * 2.0)
    frames = np.empty((n_frames, *shape), dtype=np.uint8)
    m = _MARGIN_PX
    for t in range(n_frames):
        dy, dx = drift[t]
        # Content moved by +(dy, dx): multiply by exp(-2 pi i k.d).
        ramp = np.exp(-2j * np.pi * (ky * dy + kx * dx))
        moved = sfft.irfft2(spectrum * ramp, s=canvas, workers=workers)[
            m : m + shape[0], m : m + shape[1]
        ]
        intensity = np.clip(1.0 + moved, 0.0, None) * dose_per_px
        if gain is not None:
            intensity /= gain
        frames[t] = np.minimum(rng.poisson(intensity), 255)
    return IndependentMovie(frames, drift, pixel_size_a, dose_per_px)


def drift_rmse(found: NDArray[np.float64], planted: NDArray[np.float64]) -> float:
    """RMS distance (px) between two (n, 2) trajectories, mean offset removed."""
    diff = np.asarray(found, dtype=np.float64) - planted
    diff -= diff.mean(axis=0)
    return float(np.sqrt(np.mean(np.sum(diff**2, axis=1))))
