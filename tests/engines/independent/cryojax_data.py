"""A second, independent source of truth: micrographs and movies made with cryojax.

cryojax (the field's JAX simulator, not cryolive's code) projects an atomic model and applies
its own contrast transfer function; nothing here comes from ``cryolive.simulate`` or from the
other test generators, so an engine and a generator cannot share a mistake. Not a test module:
loaded by ``conftest.py`` here and by ``bench/independent.py``.

A micrograph is made thus:

- one protein-like atomic model (``protein_atoms``): a few hundred atoms in three to five
  overlapping lobes, 25-35 Å across, drawn at random (nothing downloaded);
- each particle: that model at a random orientation (cryojax ``EulerAnglePose``), projected by
  cryojax (``GaussianMixtureVolume``, Gaussian atoms) into a small box, scaled so that its
  darkest point is ``peak_phase`` rad, and pasted at a random non-overlapping position;
- an amorphous layer (``amorphous_phase`` rad sd of white phase) that gives the Thon rings;
- cryojax's CTF (``AstigmaticCTF`` in ``ContrastTransferTheory.propagate_object``) applied to
  the whole phase image, so defocus and astigmatism are in cryojax's own conventions;
- intensity ``(1 + 2 contrast) x ice``, ``ice`` a low-frequency texture (4 % sd, no power
  finer than ~250 Å), recorded as Poisson counts.

A movie is that intensity on a canvas with a margin, moved by a smooth drift (fast exponential
settle + slow linear creep + small wobble, other values in x and y) with Fourier phase ramps,
cropped and counted (Poisson) at about 1 e/px/frame.

Conventions mapping (cryojax -> cryolive), checked in ``test_conventions.py``:

- defocus: cryojax ``defocus_in_angstroms`` is the mean, positive = underfocus (as cryolive);
  ``astigmatism_in_angstroms`` = U - V, so U = mean + ast/2 and V = mean - ast/2;
- astigmatism angle: cryojax measures it (degrees) from +y towards +x (its frequency grid
  stores (kx, ky) and takes arctan2(kx, ky)); cryolive from +x towards +y: angle_cryolive =
  90 - angle_cryojax (mod 180);
- sign: cryojax's linear CTF is sin(χ' - φ_A) with χ' = -χ, i.e. -sin(χ + φ_A) as cryolive's:
  protein (positive phase) is dark at underfocus;
- pixels: cryojax's offsets and images are (y, x) arrays with x along columns; ``centres_yx``
  here are array (row, column) pixels of the particles' centres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cryojax.simulator as cxs
import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import NDArray

_BOX_PX = 64
_MARGIN_PX = 32


@dataclass(frozen=True)
class CryojaxMicrograph:
    """Counts (y, x) float32, particle centres (n, 2) (y, x) px, and the CTF in both conventions."""

    image: NDArray[np.float32]
    centres_yx: NDArray[np.float64]
    pixel_size_a: float
    defocus_u_a: float  # cryolive convention
    defocus_v_a: float
    angle_deg: float  # cryolive: U axis from +x towards +y
    cryojax_ctf: tuple[float, float, float]  # (defocus, astigmatism, angle) as given to cryojax


@dataclass(frozen=True)
class CryojaxMovie:
    frames: NDArray[np.uint8]  # (n, y, x) counts
    drift_px: NDArray[np.float64]  # (n, 2) (dy, dx) of frame t's content, row 0 zero
    pixel_size_a: float
    dose_per_px: float


def protein_atoms(rng: np.random.Generator, *, n_atoms: int = 300, diameter_a: float = 30.0):
    """(n, 3) atom positions (Å) of a lumpy globule ``diameter_a`` across, centred on 0."""
    lobes = rng.integers(3, 6)
    centres = rng.standard_normal((lobes, 3))
    centres *= 0.2 * diameter_a / np.linalg.norm(centres, axis=1, keepdims=True)
    which = rng.integers(0, lobes, n_atoms)
    radius = 0.3 * diameter_a * rng.uniform(0, 1, n_atoms) ** (1 / 3)
    direction = rng.standard_normal((n_atoms, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    atoms = centres[which] + radius[:, None] * direction
    return atoms - atoms.mean(axis=0)


def project(atoms: NDArray[np.float64], angles_deg: NDArray[np.float64], pixel_size_a: float):
    """(n, box, box) cryojax projections of ``atoms`` at (n, 3) Euler angles (phi, theta, psi)."""
    volume = cxs.GaussianMixtureVolume(jnp.asarray(atoms), amplitudes=1.0, variances=1.5)
    config = cxs.BasicImageConfig((_BOX_PX, _BOX_PX), pixel_size_a)

    @jax.jit
    def one(angles: jax.Array) -> jax.Array:
        pose = cxs.EulerAnglePose(phi_angle=angles[0], theta_angle=angles[1], psi_angle=angles[2])
        return cxs.make_image_model(volume, config, pose).simulate()

    return np.stack([np.asarray(one(jnp.asarray(a))) for a in angles_deg])


def _positions(rng: np.random.Generator, shape: tuple[int, int], n: int, gap_px: float):
    kept: list[tuple[float, float]] = []
    for _ in range(50 * n):
        if len(kept) == n:
            break
        y, x = rng.uniform(_BOX_PX / 2, shape[0] - _BOX_PX / 2 - 1, 2)
        if all((y - a) ** 2 + (x - b) ** 2 >= gap_px**2 for a, b in kept):
            kept.append((round(y), round(x)))
    return np.array(kept, dtype=np.float64).reshape(-1, 2)


def _ice(rng: np.random.Generator, shape: tuple[int, int], pixel_size_a: float) -> NDArray:
    ky = np.fft.fftfreq(shape[0], d=pixel_size_a)[:, None]
    kx = np.fft.rfftfreq(shape[1], d=pixel_size_a)[None, :]
    field = np.fft.irfft2(np.fft.rfft2(rng.standard_normal(shape)) *
                          np.exp(-(ky**2 + kx**2) * 250.0**2), s=shape)  # fmt: skip
    return field / field.std()


def intensity(
    rng: np.random.Generator,
    *,
    shape: tuple[int, int],
    pixel_size_a: float,
    n_particles: int,
    defocus_a: float,
    astigmatism_a: float = 0.0,
    cryojax_angle_deg: float = 0.0,
    peak_phase: float = 0.12,
    amorphous_phase: float = 0.0,
    ice_contrast: float = 0.04,
    particle_diameter_a: float = 30.0,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The noiseless image (y, x) (mean about 1) and the particles' centres (n, 2) (y, x) px.

    ``particle_diameter_a`` (at most ~55 Å: the projection box is 64 px) sets the model's size,
    its atom count (300 at 30 Å, as the volume) and the smallest gap between centres (+10 Å).
    """
    if particle_diameter_a == 30.0:
        atoms = protein_atoms(rng)  # the default draws stay as they were
    else:
        n_atoms = round(300 * (particle_diameter_a / 30.0) ** 3)
        atoms = protein_atoms(rng, n_atoms=n_atoms, diameter_a=particle_diameter_a)
    gap_a = particle_diameter_a + 10.0
    centres = _positions(rng, shape, n_particles, gap_px=gap_a / pixel_size_a)
    angles = np.column_stack([rng.uniform(-180, 180, len(centres)),
                              np.degrees(np.arccos(rng.uniform(-1, 1, len(centres)))),
                              rng.uniform(-180, 180, len(centres))])  # fmt: skip
    phase = amorphous_phase * rng.standard_normal(shape)
    if len(centres):
        boxes = project(atoms, angles, pixel_size_a)
        boxes *= peak_phase / boxes.max()
        half = _BOX_PX // 2
        for (y, x), box in zip(centres.astype(int), boxes, strict=True):
            phase[y - half : y + half, x - half : x + half] += box
    config = cxs.BasicImageConfig(shape, pixel_size_a, 300.0)
    theory = cxs.ContrastTransferTheory(
        cxs.AstigmaticCTF(defocus_a, astigmatism_a, cryojax_angle_deg, 2.7),
        amplitude_contrast_ratio=0.07,
    )
    spectrum = theory.propagate_object(jnp.fft.rfft2(jnp.asarray(phase)), config)
    contrast = np.asarray(jnp.fft.irfft2(spectrum, s=shape), dtype=np.float64)
    ice = 1.0 + ice_contrast * _ice(rng, shape, pixel_size_a)
    return np.clip((1.0 + 2.0 * contrast) * ice, 0.0, None), centres


def micrograph(
    rng: np.random.Generator,
    *,
    shape: tuple[int, int] = (1024, 1024),
    pixel_size_a: float = 1.0,
    n_particles: int = 120,
    defocus_a: float = 15000.0,
    astigmatism_a: float = 0.0,
    cryojax_angle_deg: float = 0.0,
    dose_per_px: float = 30.0,
    amorphous_phase: float = 0.0,
    particle_diameter_a: float = 30.0,
) -> CryojaxMicrograph:
    """A summed micrograph: Poisson counts at ``dose_per_px`` e/px in all."""
    image, centres = intensity(rng, shape=shape, pixel_size_a=pixel_size_a,
                               n_particles=n_particles, defocus_a=defocus_a,
                               astigmatism_a=astigmatism_a, cryojax_angle_deg=cryojax_angle_deg,
                               amorphous_phase=amorphous_phase,
                               particle_diameter_a=particle_diameter_a)  # fmt: skip
    counts = rng.poisson(dose_per_px * image).astype(np.float32)
    return CryojaxMicrograph(
        image=counts,
        centres_yx=centres,
        pixel_size_a=pixel_size_a,
        defocus_u_a=defocus_a + astigmatism_a / 2,
        defocus_v_a=defocus_a - astigmatism_a / 2,
        angle_deg=(90.0 - cryojax_angle_deg) % 180.0,
        cryojax_ctf=(defocus_a, astigmatism_a, cryojax_angle_deg),
    )


def drift(rng: np.random.Generator, n_frames: int) -> NDArray[np.float64]:
    """(n, 2) (dy, dx) px: settle (1-2.5 px, tau 1.5-4 frames) + creep + wobble, row 0 zero."""
    t = np.arange(n_frames, dtype=np.float64)
    axes = []
    for _ in range(2):
        settle = rng.uniform(1.0, 2.5) * rng.choice([-1.0, 1.0])
        tau = rng.uniform(1.5, 4)
        creep = rng.uniform(0.02, 0.06) * rng.choice([-1.0, 1.0])
        wobble, period, phase = rng.uniform(0.1, 0.3), rng.uniform(6, 14), rng.uniform(0, 6.3)
        path = (settle * (1 - np.exp(-t / tau)) + creep * t
                + wobble * np.sin(2 * np.pi * t / period + phase))  # fmt: skip
        axes.append(path - path[0])
    return np.stack(axes, axis=1)


def movie(
    rng: np.random.Generator,
    *,
    shape: tuple[int, int] = (512, 512),
    n_frames: int = 24,
    pixel_size_a: float = 1.0,
    dose_per_px: float = 1.0,
    defocus_a: float = 15000.0,
) -> CryojaxMovie:
    """Frames (n, y, x) uint8 counts of a cryojax image moved by :func:`drift`."""
    canvas_shape = (shape[0] + 2 * _MARGIN_PX, shape[1] + 2 * _MARGIN_PX)
    n = max(1, int(canvas_shape[0] * canvas_shape[1] / 60.0**2 * 0.6))
    image, _ = intensity(rng, shape=canvas_shape, pixel_size_a=pixel_size_a, n_particles=n,
                         defocus_a=defocus_a, amorphous_phase=0.05)  # fmt: skip
    path = drift(rng, n_frames)
    spectrum = np.fft.rfft2(image)
    ky = np.fft.fftfreq(canvas_shape[0])[:, None]
    kx = np.fft.rfftfreq(canvas_shape[1])[None, :]
    frames = np.empty((n_frames, *shape), dtype=np.uint8)
    m = _MARGIN_PX
    for i, (dy, dx) in enumerate(path):
        ramp = np.exp(-2j * math.pi * (ky * dy + kx * dx))
        moved = np.fft.irfft2(spectrum * ramp, s=canvas_shape)
        lam = dose_per_px * np.clip(moved[m : m + shape[0], m : m + shape[1]], 0.0, None)
        frames[i] = np.minimum(rng.poisson(lam), 255)
    return CryojaxMovie(frames=frames, drift_px=path, pixel_size_a=pixel_size_a,
                        dose_per_px=dose_per_px)  # fmt: skip


def drift_rmse(found: NDArray[np.float64], planted: NDArray[np.float64]) -> float:
    """RMSE (px) of a trajectory after removing the mean offset between the two."""
    d = (found - found.mean(axis=0)) - (planted - planted.mean(axis=0))
    return float(np.sqrt((d**2).sum(axis=1).mean()))
