"""Particles of a known map, simulated independently of the Fourier projector under test.

The map is a sum of 3D Gaussian blobs, so each projection is exactly a sum of 2D Gaussians at
the rotated centres (no interpolation, no central slices): the engines are not checked against
their own forward model. The CTF (RELION sign, white particles) and white noise are then added.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from cryolive.engines.recon3d import (
    ParticleStack3D,
    image_transforms,
    images_from_transforms,
    particle_ctf,
    random_rotations,
)


@dataclass(frozen=True)
class Blobs:
    """Gaussian blobs: centres (m, 3) x, y, z in pixels from the box centre, sigmas, heights."""

    centres: NDArray[np.float64]
    sigmas: NDArray[np.float64]
    heights: NDArray[np.float64]

    def volume(self, box: int) -> NDArray[np.float32]:
        """The map (box, box, box) [z, y, x], centred at box // 2."""
        grid = np.indices((box, box, box), dtype=np.float64) - box // 2  # z, y, x
        vol = np.zeros((box, box, box))
        for (x, y, z), s, h in zip(self.centres, self.sigmas, self.heights, strict=True):
            d2 = (grid[2] - x) ** 2 + (grid[1] - y) ** 2 + (grid[0] - z) ** 2
            vol += h * np.exp(-d2 / (2 * s * s))
        return vol.astype(np.float32)


def blobs(rng: np.random.Generator, *, count: int = 30, radius_px: float = 9.0) -> Blobs:
    """An asymmetric blob map inside a sphere of ``radius_px``; sigmas 1.2-2.5 px."""
    centres = []
    while len(centres) < count:
        p = rng.uniform(-radius_px, radius_px, size=3)
        if np.linalg.norm(p) <= radius_px:
            centres.append(p)
    return Blobs(np.array(centres), rng.uniform(1.2, 2.5, count), rng.uniform(0.5, 1.5, count))


def project(b: Blobs, rotations: NDArray[np.float64], box: int, shifts_px: NDArray[np.float64]):
    """Exact projections (n, box, box) at RELION matrices, moved by (n, 2) x, y pixel shifts."""
    c = np.arange(box) - box // 2
    out = np.zeros((len(rotations), box, box))
    for i, a in enumerate(rotations):
        xy = (b.centres @ a.T)[:, :2] + shifts_px[i]
        gx = np.exp(-((c[None, :] - xy[:, 0:1]) ** 2) / (2 * b.sigmas[:, None] ** 2))
        gy = np.exp(-((c[None, :] - xy[:, 1:2]) ** 2) / (2 * b.sigmas[:, None] ** 2))
        weight = b.heights * np.sqrt(2 * np.pi) * b.sigmas  # ∫ of the 3D Gaussian along z
        out[i] = np.einsum("m,my,mx->yx", weight, gy, gx)
    return out.astype(np.float32)


@dataclass(frozen=True)
class Simulated:
    stack: ParticleStack3D
    rotations: NDArray[np.float64]  # the true RELION matrices (n, 3, 3)


def simulate(
    maps: list[Blobs],
    counts: list[int],
    rng: np.random.Generator,
    *,
    box: int = 32,
    pixel_size_a: float = 4.0,
    snr: float = 0.5,
    max_shift_px: float = 2.0,
) -> tuple[Simulated, NDArray[np.int64]]:
    """Particles of each map (``counts`` of each, shuffled), white, CTF'd, with noise of
    variance var(projections)/``snr``, and known origins. Returns them and each one's map."""
    labels = rng.permutation(np.repeat(np.arange(len(maps)), counts))
    n = len(labels)
    rots = random_rotations(n, rng)
    shifts = rng.uniform(-max_shift_px, max_shift_px, size=(n, 2))
    clean = np.zeros((n, box, box), dtype=np.float32)
    for k, b in enumerate(maps):
        sel = labels == k
        clean[sel] = project(b, rots[sel], box, shifts[sel])
    du = rng.uniform(8000.0, 25000.0, n)
    defocus = np.column_stack([du, du - rng.uniform(0, 500, n), rng.uniform(0, 180, n)])
    ctf = particle_ctf(box, pixel_size_a, defocus)
    images = images_from_transforms(image_transforms(clean) * ctf, box)
    sigma = np.sqrt(images.var() / snr)
    images = (images + rng.normal(0.0, sigma, images.shape)).astype(np.float32)
    stack = ParticleStack3D(
        images=images, pixel_size_a=pixel_size_a, defocus=defocus, origins_a=shifts * pixel_size_a
    )
    return Simulated(stack, rots), labels


def lowpass(volume: NDArray[np.floating], shell: float) -> NDArray[np.float64]:
    """A hard spherical low-pass of a map at ``shell`` (frequency index)."""
    box = volume.shape[0]
    k = np.fft.fftfreq(box, d=1.0 / box)
    r = np.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2)
    return np.fft.ifftn(np.fft.fftn(volume) * (r <= shell)).real


def _nearest_rotation(m: NDArray[np.float64]) -> NDArray[np.float64]:
    u, _, vt = np.linalg.svd(m)
    r = u @ vt
    if np.linalg.det(r) < 0:
        u[:, -1] *= -1
        r = u @ vt
    return np.asarray(r, dtype=np.float64)


def aligned_correlation(
    model: NDArray[np.floating],
    truth: NDArray[np.floating],
    estimated: NDArray[np.float64],
    true: NDArray[np.float64],
    limit_shell: float,
) -> float:
    """Real-space correlation of ``model`` with ``truth`` after a rotation (and, for the other
    hand, a mirror) that best explains the particles' angles, both low-passed to ``limit_shell``.

    A model equal to the truth turned by Q (model(r) = truth(Q r)) gives particle matrices
    E = A·Q; in the mirrored hand (M = diag(1, 1, -1)) E = M·A·M·Q. Q is the rotation nearest
    the mean of the per-particle estimates; the better of the two hands is returned.
    """
    from cryolive.engines.recon3d import rotate_volume

    m = np.diag([1.0, 1.0, -1.0])
    t = lowpass(truth, limit_shell).ravel()
    best = -1.0
    for mirrored in (False, True):
        a = np.einsum("ij,njk,kl->nil", m, true, m) if mirrored else true
        q = _nearest_rotation(np.einsum("nji,njk->ik", a, estimated))
        turned = rotate_volume(model, q)  # W(x) = model(Qᵀ x)
        if mirrored:
            turned = np.roll(turned[::-1], 1, axis=0)  # z → -z about the centre
        w = lowpass(turned, limit_shell).ravel()
        best = max(best, float(np.corrcoef(w, t)[0, 1]))
    return best


def write_star(stack: ParticleStack3D, folder: Path) -> Path:
    """``folder/particles.star`` (RELION 3.1, one optics group) and ``particles.mrcs``."""
    import mrcfile
    import pandas as pd
    import starfile

    folder.mkdir(parents=True, exist_ok=True)
    with mrcfile.new(folder / "particles.mrcs", overwrite=True) as mrc:
        mrc.set_data(stack.images)
        mrc.voxel_size = stack.pixel_size_a
    optics = pd.DataFrame(
        {
            "rlnOpticsGroup": [1],
            "rlnOpticsGroupName": ["opticsGroup1"],
            "rlnVoltage": [stack.voltage_kv],
            "rlnSphericalAberration": [stack.cs_mm],
            "rlnAmplitudeContrast": [stack.amplitude_contrast],
            "rlnImagePixelSize": [stack.pixel_size_a],
            "rlnImageSize": [stack.box],
            "rlnImageDimensionality": [2],
        }
    )
    n = stack.count
    origins = stack.origins_a if stack.origins_a is not None else np.zeros((n, 2))
    particles = pd.DataFrame(
        {
            "rlnImageName": [f"{i + 1:06d}@particles.mrcs" for i in range(n)],
            "rlnMicrographName": ["mic.mrc"] * n,
            "rlnDefocusU": stack.defocus[:, 0],
            "rlnDefocusV": stack.defocus[:, 1],
            "rlnDefocusAngle": stack.defocus[:, 2],
            "rlnOriginXAngst": origins[:, 0],
            "rlnOriginYAngst": origins[:, 1],
            "rlnOpticsGroup": np.ones(n, dtype=int),
        }
    )
    path = folder / "particles.star"
    starfile.write({"optics": optics, "particles": particles}, path, overwrite=True)
    return path
