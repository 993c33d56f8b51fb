"""Orientation search and map filtering shared by the initial-model and 3D-classification engines.

Work happens in a *working box*: the particles' transforms cropped to the frequencies below the
current resolution limit (a Fourier crop is an ideal down-sampling, so the cropped transforms
are the transforms of binned images, with the same integer frequency indices). Scores of every
image against every projection are one matrix product: for image X (CTF C, point weights w) and
projection P, the least-squares score Σ w·Re(X̄·C·P) - ½ Σ w·C²·|P|² is the row [w·C·X, -½w·C²]
times the column [P, |P|²] (real and imaginary parts stacked).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cryolive.engines.recon3d import (
    Reconstructor,
    euler_to_matrix,
    frequency_grid,
    particle_ctf,
    rotate_volume,
    shell_index,
)

Complex = NDArray[np.complex64]
Real = NDArray[np.float32]


def working_box(box: int, limit_shell: float) -> int:
    """Smallest even box ≥ 16 whose Nyquist lies two shells past ``limit_shell`` (≤ ``box``)."""
    want = 2 * (int(np.ceil(limit_shell)) + 2)
    return int(min(box, max(16, want + want % 2)))


def crop_transforms(transforms: Complex, small: int) -> Complex:
    """(n, b, b//2+1) rfft2 transforms → (n, s, s//2+1): the frequencies |k| < s/2 kept."""
    box = transforms.shape[-2]
    if small == box:
        return transforms
    h = small // 2
    out = np.zeros((transforms.shape[0], small, h + 1), dtype=np.complex64)
    out[:, :h, :] = transforms[:, :h, : h + 1]
    out[:, small - h + 1 :, :] = transforms[:, box - h + 1 :, : h + 1]
    return out


def resize_volume(volume: NDArray[np.floating], box: int) -> Real:
    """Fourier crop or zero-pad a centred (b, b, b) map to ``box``; keeps the transform's values
    (so projections compare with cropped image transforms) and zeroes the new Nyquist planes."""
    old = volume.shape[0]
    if old == box:
        return np.asarray(volume, dtype=np.float32)
    ft = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(np.asarray(volume, np.float64))))
    out = np.zeros((box, box, box), dtype=np.complex128)
    n = min(old, box) - 1  # -(m/2-1) … m/2-1: the Nyquist planes left out, the map stays real
    lo_o, lo_n = old // 2 - (n - 1) // 2, box // 2 - (n - 1) // 2
    out[lo_n : lo_n + n, lo_n : lo_n + n, lo_n : lo_n + n] = ft[
        lo_o : lo_o + n, lo_o : lo_o + n, lo_o : lo_o + n
    ]
    real = np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(out))).real
    return np.asarray(real, dtype=np.float32)


def lowpass(volume: NDArray[np.floating], limit_shell: float, width: float = 2.0) -> Real:
    """Raised-cosine low-pass of a map: 1 below ``limit_shell - width/2``, 0 above ``+width/2``."""
    box = volume.shape[0]
    k = np.fft.fftfreq(box, d=1.0 / box)
    kr = np.arange(box // 2 + 1)
    r = np.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + kr[None, None, :] ** 2)
    t = np.clip((r - (limit_shell - width / 2)) / width, 0.0, 1.0)
    filt = 0.5 * (1 + np.cos(np.pi * t))
    ft = np.fft.rfftn(np.asarray(volume, dtype=np.float64)) * filt
    return np.asarray(np.fft.irfftn(ft, s=volume.shape, axes=(0, 1, 2)), dtype=np.float32)


def soft_mask(box: int, radius_px: float, edge_px: float = 3.0) -> Real:
    """A sphere of ``radius_px`` about the centre with a cosine edge of ``edge_px``."""
    c = np.arange(box) - box // 2
    r = np.sqrt(c[:, None, None] ** 2 + c[None, :, None] ** 2 + c[None, None, :] ** 2)
    t = np.clip((r - radius_px) / edge_px, 0.0, 1.0)
    return np.asarray(0.5 * (1 + np.cos(np.pi * t)), dtype=np.float32)


def symmetry_rotations(symmetry: str) -> NDArray[np.float64]:
    """RELION matrices of a point group: ``C1``, ``Cn`` (about z) or ``Dn`` (plus a 2-fold on x)."""
    name = symmetry.strip().upper()
    if len(name) < 2 or name[0] not in "CD" or not name[1:].isdigit() or int(name[1:]) < 1:
        raise ValueError(f"symmetry must be Cn or Dn (n ≥ 1), got {symmetry!r}")
    n = int(name[1:])
    angles = [[360.0 * k / n, 0.0, 0.0] for k in range(n)]
    if name[0] == "D":
        angles += [[360.0 * k / n, 180.0, 0.0] for k in range(n)]
    return euler_to_matrix(angles)


def symmetrise(volume: NDArray[np.floating], rotations: NDArray[np.float64]) -> Real:
    """The average of the map over the group's rotations (real space, cubic interpolation)."""
    if len(rotations) == 1:
        return np.asarray(volume, dtype=np.float32)
    total = np.zeros(volume.shape, dtype=np.float64)
    for r in rotations:
        total += rotate_volume(volume, r)
    return np.asarray(total / len(rotations), dtype=np.float32)


@dataclass(frozen=True)
class Prepared:
    """Particles ready to score at one working box: cropped transforms and CTFs."""

    transforms: Complex  # (n, s, s//2+1), centred by the known origins
    ctf: Real  # (n, s, s//2+1)
    box: int  # s
    pixel_size_a: float  # of the working box


def prepare(
    transforms: Complex,
    defocus: NDArray[np.float64],
    pixel_size_a: float,
    small: int,
    *,
    voltage_kv: float,
    cs_mm: float,
    amplitude_contrast: float,
) -> Prepared:
    """Crop full-box transforms to ``small`` and compute their CTFs there."""
    box = transforms.shape[-2]
    pixel = pixel_size_a * box / small
    ctf = particle_ctf(
        small, pixel, defocus, voltage_kv=voltage_kv, cs_mm=cs_mm,
        amplitude_contrast=amplitude_contrast,
    )  # fmt: skip
    return Prepared(crop_transforms(transforms, small), ctf, small, pixel)


def _point_weights(box: int, limit_shell: float) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """Points scored (shells 1 … limit) and their weight (2 for kx > 0: k and -k)."""
    shells = shell_index(box)
    _, kx = frequency_grid(box)
    keep = (shells >= 1) & (shells <= limit_shell)
    keep[box // 2, :] = False  # the Nyquist row
    w = np.where(kx > 0, 2.0, 1.0)[keep]
    return keep, w


class Slicer:
    """Central slices of a map at a few rfft2 points only (those scored), fast for many rotations.

    The same padded (x2), gridding-corrected, trilinear slices as :class:`Projector`, restricted
    to ``points`` (a (b, b//2+1) boolean mask of points well inside Nyquist).
    """

    def __init__(self, volume: NDArray[np.floating], points: NDArray[np.bool_]) -> None:
        box = volume.shape[0]
        size = 2 * box
        x = (np.arange(box) - box // 2) / size
        w = np.sinc(x) ** 2
        corrected = np.asarray(volume, np.float64) / (w[:, None, None] * w[None, :, None] * w)
        padded = np.zeros((size, size, size))
        lo = size // 2 - box // 2
        padded[lo : lo + box, lo : lo + box, lo : lo + box] = corrected
        ft = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(padded)))
        self._flat = ft.astype(np.complex64).reshape(-1)
        self._size = size
        ky, kx = frequency_grid(box)
        self._k = np.stack([kx[points], ky[points], np.zeros(int(points.sum()))]) * 2.0  # (3, m)

    def __call__(self, rotations: NDArray[np.float64]) -> Complex:
        """(J, 3, 3) RELION matrices → (J, m) complex64 slice values at the points."""
        size = self._size
        q = np.einsum("nji,jm->nmi", rotations, self._k).astype(np.float32) + size // 2
        base = np.floor(q)
        f = q - base
        b = base.astype(np.int64)
        flat = (b[..., 2] * size + b[..., 1]) * size + b[..., 0]  # x, y, z → [z, y, x]
        g = 1.0 - f
        out = np.zeros(flat.shape, dtype=np.complex64)
        for dz in (0, 1):
            wz = f[..., 2] if dz else g[..., 2]
            for dy in (0, 1):
                wzy = wz * (f[..., 1] if dy else g[..., 1])
                off = (dz * size + dy) * size
                out += self._flat[flat + off] * (wzy * g[..., 0])
                out += self._flat[flat + off + 1] * (wzy * f[..., 0])
        return out


def score(
    particles: Prepared,
    model: NDArray[np.floating],
    rotations: NDArray[np.float64],
    limit_shell: float,
    *,
    chunk: int = 4096,
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64]]:
    """Best orientation of each particle against a working-box ``model``.

    Returns (best score (n,), index of the best rotation (n,), noise power per point (n,)):
    the score is the least-squares one above (larger is better), the noise power the mean
    squared residual at the best orientation (for probabilities between classes).
    """
    keep, w = _point_weights(particles.box, limit_shell)
    x = particles.transforms[:, keep]
    c = particles.ctf[:, keep]
    wcx = (w * c * x).astype(np.complex64)
    left = np.concatenate([wcx.real, wcx.imag, (-0.5 * w * c * c).astype(np.float32)], axis=1)
    proj = Slicer(model, keep)
    n = x.shape[0]
    best = np.full(n, -np.inf)
    arg = np.zeros(n, dtype=np.int64)
    for lo in range(0, len(rotations), chunk):
        p = proj(rotations[lo : lo + chunk])
        right = np.concatenate([p.real, p.imag, np.abs(p) ** 2], axis=1).T
        s = left @ right
        j = np.argmax(s, axis=1)
        sj = s[np.arange(n), j].astype(np.float64)
        better = sj > best
        best[better] = sj[better]
        arg[better] = j[better] + lo
    p = proj(rotations[arg])
    resid = np.sum(w * np.abs(x - c * p) ** 2, axis=1) / w.sum()
    return best, arg, resid


def assign(
    parts: Prepared, models: list[NDArray[np.float32]], grid: NDArray[np.float64], limit: float
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """Best (score, rotation index, class) of each particle over all models (hard)."""
    scores, rots = [], []
    for m in models:
        s, r, _ = score(parts, m, grid, limit)
        scores.append(s)
        rots.append(r)
    all_s = np.stack(scores)
    cls = np.argmax(all_s, axis=0).astype(np.int64)
    cols = np.arange(all_s.shape[1])
    return all_s[cls, cols], np.stack(rots)[cls, cols], cls


def sgd_step(
    parts: Prepared,
    models: list[NDArray[np.float32]],
    grid: NDArray[np.float64],
    limit: float,
    *,
    batch: NDArray[np.int64],
    step: float,
    mask: NDArray[np.float32],
    group: NDArray[np.float64],
) -> list[NDArray[np.float32]]:
    """One stochastic step: the ``batch`` particles aligned to every model (hard class and
    orientation), each class's members reconstructed, and each model moved ``step`` of the way
    to its reconstruction (low-passed to ``limit``, masked, symmetrised)."""
    sub = Prepared(parts.transforms[batch], parts.ctf[batch], parts.box, parts.pixel_size_a)
    _, rot, cls = assign(sub, models, grid, limit)
    out = list(models)
    for k in range(len(models)):
        members = np.flatnonzero(cls == k)
        if len(members) < 10:
            continue
        rec = Reconstructor(sub.box)
        rec.insert(sub.transforms[members], grid[rot[members]], sub.ctf[members])
        new = (1.0 - step) * models[k] + step * lowpass(rec.reconstruct(), limit)
        out[k] = symmetrise(new * mask, group)
    return out
