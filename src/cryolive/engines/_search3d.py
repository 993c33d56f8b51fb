"""Orientation search and map filtering shared by the initial-model and 3D-classification engines.

Work happens in a *working box*: the particles' transforms cropped to the frequencies below the
current resolution limit (a Fourier crop is an ideal down-sampling, so the cropped transforms
are the transforms of binned images, with the same integer frequency indices). Scores of every
image against every projection are one matrix product: for image X (CTF C, point weights w) and
projection P, the least-squares score Σ w·Re(X̄·C·P) - ½ Σ w·C²·|P|² is the row [w·C·X, -½w·C²]
times the column [P, |P|²] (real and imaginary parts stacked).

Translations: each particle carries an origin (Å, x and y, the particle's centre relative to the
box centre, as ``rlnOriginXAngst``); an image is scored after moving it back by its origin plus a
trial offset (the phase factor e^{+2πi k·s / L}, L the box side in Å, the same at every working
box). :func:`refine_origins` searches a grid of offsets with each particle's orientation fixed;
:func:`score` searches orientations at each particle's current origin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cryolive.engines.recon3d import (
    Reconstructor,
    euler_to_matrix,
    frequency_grid,
    fsc,
    particle_ctf,
    resolution_at,
    rotate_volume,
    shell_index,
    shift_phases,
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


def offset_grid(step_a: float, radius: int) -> NDArray[np.float64]:
    """(S, 2) x, y offsets (Å) ``step_a`` apart within about ``radius`` steps of (0, 0) (a 3 x 3
    square for radius 1, 21 points for 2); (0, 0) first so that a tie keeps the current origin."""
    if not step_a > 0 or radius < 0:
        raise ValueError(f"offset grid: need step_a > 0 and radius ≥ 0, got {step_a}, {radius}")
    r = np.arange(-radius, radius + 1)
    g = np.array([(x, y) for x in r for y in r if x * x + y * y <= radius * radius + radius])
    g = g[np.argsort(np.hypot(g[:, 0], g[:, 1]), kind="stable")]
    return np.asarray(g * step_a, dtype=np.float64)


def centring_phases(parts: Prepared, origins_a: NDArray[np.float64]) -> Complex:
    """(n, s, s//2+1) factors that move each working-box image back by its origin (Å)."""
    return np.conj(shift_phases(parts.box, np.asarray(origins_a) / parts.pixel_size_a))


def centred(
    parts: Prepared, idx: NDArray[np.int64], origins_a: NDArray[np.float64] | None
) -> Complex:
    """The ``idx`` particles' working-box transforms moved back by their origins (Å)."""
    if origins_a is None:
        return parts.transforms[idx]
    return np.asarray(
        parts.transforms[idx] * centring_phases(parts, origins_a[idx]), dtype=np.complex64
    )


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
    origins_a: NDArray[np.float64] | None = None,
    chunk: int = 4096,
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64]]:
    """Best orientation of each particle against a working-box ``model``.

    Returns (best score (n,), index of the best rotation (n,), noise power per point (n,)):
    the score is the least-squares one above (larger is better), the noise power the mean
    squared residual at the best orientation (for probabilities between classes). Images are
    moved back by ``origins_a`` (n, 2) Å first when given.
    """
    n = particles.transforms.shape[0]
    origins = np.zeros((n, 2)) if origins_a is None else origins_a
    best, arg, resid, _ = search(
        particles, model, rotations, limit_shell, origins_a=origins, offsets_a=np.zeros((1, 2)),
        max_origin_a=np.inf, chunk=chunk,
    )  # fmt: skip
    return best, arg, resid


def search(
    particles: Prepared,
    model: NDArray[np.floating],
    rotations: NDArray[np.float64],
    limit_shell: float,
    *,
    origins_a: NDArray[np.float64],
    offsets_a: NDArray[np.float64],
    max_origin_a: float,
    chunk: int = 4096,
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """Best orientation and origin of each particle, searched jointly: every rotation x every
    offset of ``offsets_a`` (S, 2) Å about the particle's origin (origins farther than
    ``max_origin_a`` from the box centre are not tried). Returns (best score, rotation index,
    noise power per point, origins Å), the scores those of :func:`score`."""
    keep, w = _point_weights(particles.box, limit_shell)
    n, n_s = particles.transforms.shape[0], len(offsets_a)
    trial = origins_a[:, None, :] + offsets_a[None]  # (n, S, 2)
    allowed = np.hypot(trial[..., 0], trial[..., 1]) <= max_origin_a
    allowed[:, 0] |= ~allowed.any(axis=1)  # a particle already too far keeps its origin
    flat_trial = trial.reshape(-1, 2)
    each = np.repeat(np.arange(n), n_s)
    x = (particles.transforms[each] * centring_phases(particles, flat_trial))[:, keep]  # (n·S, m)
    c = np.repeat(particles.ctf[:, keep], n_s, axis=0)
    wcx = (w * c * x).astype(np.complex64)
    left = np.concatenate([wcx.real, wcx.imag, (-0.5 * w * c * c).astype(np.float32)], axis=1)
    proj = Slicer(model, keep)
    rows = n * n_s
    best = np.full(rows, -np.inf)
    arg = np.zeros(rows, dtype=np.int64)
    step = int(max(16, min(chunk, 30_000_000 // max(1, rows))))
    for lo in range(0, len(rotations), step):
        p = proj(rotations[lo : lo + step])
        right = np.concatenate([p.real, p.imag, np.abs(p) ** 2], axis=1).T
        sc = left @ right
        j = np.argmax(sc, axis=1)
        sj = sc[np.arange(rows), j].astype(np.float64)
        better = (sj > best) & allowed.reshape(-1)
        best[better] = sj[better]
        arg[better] = j[better] + lo
    per = best.reshape(n, n_s)
    pick = np.argmax(per, axis=1)
    row = np.arange(n) * n_s + pick
    best_n, arg_n = best[row], arg[row]
    p = proj(rotations[arg_n])
    resid = np.sum(w * np.abs(x[row] - c[row] * p) ** 2, axis=1) / w.sum()
    return best_n, arg_n, resid, flat_trial[row]


def refine_origins(
    particles: Prepared,
    model: NDArray[np.floating],
    rotations: NDArray[np.float64],
    limit_shell: float,
    *,
    origins_a: NDArray[np.float64],
    offsets_a: NDArray[np.float64],
    max_origin_a: float,
) -> NDArray[np.float64]:
    """Each particle's origin (Å) moved by the best of ``offsets_a`` (S, 2) at its orientation.

    ``rotations`` (n, 3, 3) is each particle's orientation. Scores are the least-squares ones of
    :func:`score` (the projection's power term does not depend on the shift, so the best shift
    is the one of largest Σ w·Re(X̄·C·P)); origins stay within ``max_origin_a`` of the box centre.
    """
    keep, w = _point_weights(particles.box, limit_shell)
    ky, kx = frequency_grid(particles.box)
    length_a = particles.box * particles.pixel_size_a
    k = np.stack([kx[keep], ky[keep]], axis=1) / length_a  # (m, 2) cycles per Å
    n = particles.transforms.shape[0]
    out = np.array(origins_a, dtype=np.float64, copy=True)
    proj = Slicer(model, keep)
    chunk = max(1, 2_000_000 // max(1, len(offsets_a) * int(keep.sum())))
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        p = proj(rotations[lo:hi])  # (c, m)
        x = particles.transforms[lo:hi][:, keep]
        cxp = np.conj(x) * particles.ctf[lo:hi][:, keep] * p * w  # (c, m)
        trial = out[lo:hi, None, :] + offsets_a[None]  # (c, S, 2)
        phase = np.exp(-2j * np.pi * np.einsum("csd,md->csm", trial, k))  # conj of centring
        s = np.einsum("cm,csm->cs", cxp, phase).real
        far = np.hypot(trial[..., 0], trial[..., 1]) > max_origin_a
        s[far] = -np.inf
        best = np.argmax(s, axis=1)
        ok = np.isfinite(s[np.arange(hi - lo), best])
        out[lo:hi][ok] = trial[np.arange(hi - lo), best][ok]
    return out


def assign(
    parts: Prepared,
    models: list[NDArray[np.float32]],
    grid: NDArray[np.float64],
    limit: float,
    origins_a: NDArray[np.float64] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """Best (score, rotation index, class) of each particle over all models (hard), each image
    moved back by its origin (Å) when ``origins_a`` is given."""
    scores, rots = [], []
    for m in models:
        s, r, _ = score(parts, m, grid, limit, origins_a=origins_a)
        scores.append(s)
        rots.append(r)
    all_s = np.stack(scores)
    cls = np.argmax(all_s, axis=0).astype(np.int64)
    cols = np.arange(all_s.shape[1])
    return all_s[cls, cols], np.stack(rots)[cls, cols], cls


@dataclass(frozen=True)
class Translations:
    """How :func:`align` searches origins: ``offsets_a`` (S, 2) Å tried about each particle's
    current origin, which stays within ``max_origin_a`` of the box centre; with ``joint``
    together with the orientations (S times the work), else at the best orientation found at
    the current origin."""

    offsets_a: NDArray[np.float64]
    max_origin_a: float
    joint: bool = False


def align(
    parts: Prepared,
    models: list[NDArray[np.float32]],
    grid: NDArray[np.float64],
    limit: float,
    origins_a: NDArray[np.float64],
    translations: Translations | None,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Hard class, orientation and origin of each particle: orientations searched on ``grid`` at
    the current origins, then the origins on ``translations``' offsets at those orientations
    (skipped when None), or both together when ``translations.joint``. Returns (rotation
    index, class, origins Å)."""
    if translations is not None and translations.joint:
        t = translations
        found = []
        for m in models:
            found.append(
                search(
                    parts,
                    m,
                    grid,
                    limit,
                    origins_a=origins_a,
                    offsets_a=t.offsets_a,
                    max_origin_a=t.max_origin_a,
                )
            )
        cls = np.argmax(np.stack([f[0] for f in found]), axis=0).astype(np.int64)
        cols = np.arange(len(cls))
        rot = np.stack([f[1] for f in found])[cls, cols]
        return rot, cls, np.stack([f[3] for f in found])[cls, cols]
    _, rot, cls = assign(parts, models, grid, limit, origins_a)
    if translations is None:
        return rot, cls, origins_a
    new = np.array(origins_a, dtype=np.float64, copy=True)
    for k, m in enumerate(models):
        sel = np.flatnonzero(cls == k)
        if len(sel) == 0:
            continue
        sub = Prepared(parts.transforms[sel], parts.ctf[sel], parts.box, parts.pixel_size_a)
        new[sel] = refine_origins(
            sub, m, grid[rot[sel]], limit, origins_a=origins_a[sel],
            offsets_a=translations.offsets_a, max_origin_a=translations.max_origin_a,
        )  # fmt: skip
    return rot, cls, new


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
    origins_a: NDArray[np.float64],
    translations: Translations | None = None,
) -> tuple[list[NDArray[np.float32]], NDArray[np.float64]]:
    """One stochastic step: the ``batch`` particles aligned to every model (hard class,
    orientation and, with ``translations``, origin), each class's members reconstructed, and
    each model moved ``step`` of the way to its reconstruction (low-passed to ``limit``,
    masked, symmetrised). Returns the models and every particle's origins (Å; the batch's
    updated)."""
    sub = Prepared(parts.transforms[batch], parts.ctf[batch], parts.box, parts.pixel_size_a)
    rot, cls, moved = align(sub, models, grid, limit, origins_a[batch], translations)
    origins = np.array(origins_a, dtype=np.float64, copy=True)
    origins[batch] = moved
    out = list(models)
    for k in range(len(models)):
        members = np.flatnonzero(cls == k)
        if len(members) < 10:
            continue
        rec = Reconstructor(sub.box)
        rec.insert(centred(sub, members, moved), grid[rot[members]], sub.ctf[members])
        new = (1.0 - step) * models[k] + step * lowpass(rec.reconstruct(), limit)
        out[k] = symmetrise(new * mask, group)
    return out, origins


def half_set_resolution_a(
    transforms: NDArray[np.complex64],
    rotations: NDArray[np.float64],
    ctf: NDArray[np.float32],
    halves: NDArray[np.int64],
    pixel_size_a: float,
) -> tuple[float, NDArray[np.float32]]:
    """FSC 0.143 resolution (Å) of the two half-set reconstructions, and the merged map.

    ``halves`` (n,) is 1 or 2 per particle. A half with fewer than 2 particles gives the box
    size (no resolution).
    """
    box = transforms.shape[-2]
    recs = []
    for h in (1, 2):
        sel = halves == h
        rec = Reconstructor(box)
        if sel.any():
            rec.insert(transforms[sel], rotations[sel], ctf[sel])
        recs.append(rec)
    if min(int((halves == 1).sum()), int((halves == 2).sum())) < 2:
        recs[0].merge(recs[1])
        return float(box * pixel_size_a), recs[0].reconstruct()
    curve = fsc(recs[0].reconstruct(), recs[1].reconstruct())
    recs[0].merge(recs[1])
    return resolution_at(curve, box, pixel_size_a, 0.143), recs[0].reconstruct()
