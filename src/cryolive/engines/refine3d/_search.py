"""Projection matching: references cut at a few frequencies, scored against many images as
matrix products (the CTF on the image side), over a global grid or around each particle.

Score of image i at orientation A and shift s (normalised cross-correlation, whitened):
``Re Σ_k w_k conj(C_i X_i e^{+iφ_s}) P_A / sqrt(Σ_k w_k C_i² |P_A|²)`` with P_A the reference's
central slice, X_i the image's transform, C_i its CTF and w_k = 1 / (data power of the shell),
halved on the kx = 0 column (it holds k and -k of the rfft2 half plane).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.spatial.transform import Rotation

from cryolive.engines.recon3d import frequency_grid
from cryolive.engines.refine3d._torch import LocalScorer, global_best_torch


class SliceCutter:
    """A volume's padded transform (gridding-corrected), sliced at chosen 2D frequencies only."""

    def __init__(self, volume: NDArray[np.floating], pad: int = 2) -> None:
        box = int(volume.shape[0])
        size = pad * box
        x = (np.arange(box) - box // 2) / size
        w = np.sinc(x) ** 2
        corrected = np.asarray(volume, dtype=np.float64) / (
            w[:, None, None] * w[None, :, None] * w[None, None, :]
        )
        padded = np.zeros((size, size, size))
        lo = size // 2 - box // 2
        padded[lo : lo + box, lo : lo + box, lo : lo + box] = corrected
        ft = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(padded)))
        self.box, self.pad, self.size = box, pad, size
        self._re = np.ascontiguousarray(ft.real, dtype=np.float32)
        self._im = np.ascontiguousarray(ft.imag, dtype=np.float32)

    def cut(
        self, rotations: NDArray[np.floating], kxy: NDArray[np.floating]
    ) -> NDArray[np.complex64]:
        """(n, m) slice values at ``kxy`` (m, 2: kx, ky indices) for (n, 3, 3) RELION matrices."""
        a = np.asarray(rotations, dtype=np.float64).reshape(-1, 3, 3)
        k3 = np.stack([kxy[:, 0], kxy[:, 1], np.zeros(len(kxy))])  # (3, m)
        out = np.empty((a.shape[0], len(kxy)), dtype=np.complex64)
        chunk = max(1, 4_000_000 // max(1, len(kxy)))
        for lo in range(0, a.shape[0], chunk):
            r = np.einsum("nji,jm->nmi", a[lo : lo + chunk], k3)  # Aᵀk as x, y, z
            coords = (r[..., ::-1] * self.pad + self.size // 2).reshape(-1, 3).T
            re = ndimage.map_coordinates(
                self._re, coords, order=1, mode="constant", prefilter=False
            )
            im = ndimage.map_coordinates(
                self._im, coords, order=1, mode="constant", prefilter=False
            )
            out[lo : lo + chunk] = (re + 1j * im).reshape(-1, len(kxy))
        return out


@dataclass(frozen=True)
class SearchData:
    """One half set's images at the searched frequencies.

    ``cx`` (n, m) CTF-multiplied image transforms, ``c2w`` (n, m) C²·w, ``w`` (m,) weights,
    ``kxy`` (m, 2) the frequencies, ``box`` the image side; ``x2w`` (n,) Σ w·|X|² and
    ``n_eff`` what it would be for pure noise of the data's power (Σ w · that power), which
    scale the scores into log-likelihoods (:func:`pose_weights`).
    """

    cx: NDArray[np.complex64]
    c2w: NDArray[np.float32]
    w: NDArray[np.float32]
    kxy: NDArray[np.float64]
    box: int
    x2w: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    n_eff: float = 1.0


def search_data(
    transforms: NDArray[np.complex64],
    ctf: NDArray[np.float32],
    noise_power: NDArray[np.float64],
    k_max: int,
) -> SearchData:
    """Select shells 1 … ``k_max`` of (n, b, b//2+1) ``transforms`` and ``ctf``."""
    box = transforms.shape[1]
    ky, kx = frequency_grid(box)
    shell = np.rint(np.hypot(kx, ky)).astype(np.int64)
    mask = (shell >= 1) & (shell <= k_max)
    w = np.where(kx == 0, 0.5, 1.0)[mask] / noise_power[shell[mask]]
    c = ctf[:, mask]
    x = transforms[:, mask]
    return SearchData(
        cx=np.asarray(x * c, dtype=np.complex64),
        c2w=np.asarray(c * c * w, dtype=np.float32),
        w=np.asarray(w, dtype=np.float32),
        kxy=np.column_stack([kx[mask], ky[mask]]),
        box=box,
        x2w=(np.abs(x) ** 2 * w).sum(axis=1, dtype=np.float64),
        n_eff=float((w * noise_power[shell[mask]]).sum()),
    )


def pose_weights(
    scores: NDArray[np.floating], x2w: NDArray[np.floating], n_eff: float
) -> NDArray[np.float64]:
    """Posterior weights (rows sum to 1) of each image's (n, K) candidate poses from their
    scores. With Gaussian noise whitened by w the best scale's log-likelihood is score²/λ
    (up to a constant), λ the noise level relative to w: estimated per image from the residual
    at its best pose, (Σ w|X|² - best²) / n_eff."""
    sc = np.asarray(scores, dtype=np.float64)
    best = sc.max(axis=1, keepdims=True)
    lam = np.clip((np.asarray(x2w, dtype=np.float64)[:, None] - best**2) / n_eff, 0.05, None)
    logp = (np.maximum(sc, 0.0) ** 2 - np.maximum(best, 0.0) ** 2) / lam
    p = np.exp(logp)
    return np.asarray(p / p.sum(axis=1, keepdims=True), dtype=np.float64)


def _phases(
    kxy: NDArray[np.float64], shifts_px: NDArray[np.floating], box: int
) -> NDArray[np.complex64]:
    """(…, m) factors e^{+2πi(k·s)/b}: multiplying an image moved by ``s`` centres it."""
    s = np.asarray(shifts_px, dtype=np.float64)
    phase = 2.0 * np.pi * (s[..., 0, None] * kxy[:, 0] + s[..., 1, None] * kxy[:, 1]) / box
    return np.asarray(np.exp(1j * phase), dtype=np.complex64)


def _as_real(z: NDArray[np.complexfloating]) -> NDArray[np.float32]:
    return np.concatenate([z.real, z.imag], axis=-1).astype(np.float32)


def global_search(
    data: SearchData,
    cutter: SliceCutter,
    rotations: NDArray[np.float64],
    shifts_px: NDArray[np.float64],
    device: str | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]:
    """Best (rotation index, shift index, score) per image over ``rotations`` x ``shifts_px``.

    ``device`` (a PyTorch device, "cuda", "cpu" …): the products, norms and argmax run there in
    float32 (:mod:`._torch`); None: numpy."""
    p = cutter.cut(rotations, data.kxy)  # (O, m)
    ph = _phases(data.kxy, shifts_px, data.box)  # (S, m)
    n, n_s, n_o = data.cx.shape[0], len(shifts_px), len(rotations)
    chunk = max(1, 20_000_000 // (n_s * n_o))
    if device is not None:
        flat_t, best_t = global_best_torch(data.cx, data.c2w, data.w, p, ph, chunk, device)
        best_s_t, best_r_t = np.divmod(flat_t, n_o)
        return best_r_t, best_s_t, best_t
    p_real = _as_real(p).T.copy()  # (2m, O)
    p_pow = (np.abs(p) ** 2).T.astype(np.float32)  # (m, O)
    best_r = np.empty(n, dtype=np.int64)
    best_s = np.empty(n, dtype=np.int64)
    best = np.empty(n, dtype=np.float32)
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        y = (data.cx[lo:hi, None, :] * ph[None]) * data.w  # (c, S, m)
        a = (_as_real(y).reshape(-1, p_real.shape[0]) @ p_real).reshape(hi - lo, n_s, n_o)
        b = np.sqrt(np.maximum(data.c2w[lo:hi] @ p_pow, 1e-30))  # (c, O)
        score = a / b[:, None, :]
        flat = score.reshape(hi - lo, -1).argmax(axis=1)
        best_s[lo:hi], best_r[lo:hi] = np.divmod(flat, n_o)
        best[lo:hi] = score.reshape(hi - lo, -1)[np.arange(hi - lo), flat]
    return best_r, best_s, best


@dataclass(frozen=True)
class Poses:
    """Each image's K candidate poses: (n, K, 3, 3) rotations, (n, K, 2) origins (px) and
    (n, K) posterior weights (rows sum to 1)."""

    rotations: NDArray[np.float64]
    origins_px: NDArray[np.float64]
    weights: NDArray[np.float64]


def perturbations(step_deg: float) -> NDArray[np.float64]:
    """(27, 3, 3) small rotations: rotation vectors on {-step, 0, step}³ (identity first)."""
    g = np.array([0.0, -1.0, 1.0]) * np.radians(step_deg)
    vecs = np.array([[x, y, z] for x in g for y in g for z in g])
    return np.asarray(Rotation.from_rotvec(vecs).as_matrix(), dtype=np.float64)


def local_search(
    data: SearchData,
    cutter: SliceCutter,
    rotations: NDArray[np.float64],
    origins_px: NDArray[np.float64],
    deltas: NDArray[np.float64],
    offsets_px: NDArray[np.float64],
    top: int = 1,
    device: str | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float32], Poses]:
    """Each image's best ``Δ·A_i`` (Δ in ``deltas``) and origin + offset; (A, origins, score,
    the ``top`` best poses with their posterior weights, best first). ``device`` as for
    :func:`global_search`."""
    scorer = None if device is None else LocalScorer(data.w, device)
    n, n_d = len(rotations), len(deltas)
    new_a = np.empty_like(rotations)
    new_o = np.empty_like(origins_px)
    best = np.empty(n, dtype=np.float32)
    k = max(1, min(top, n_d * len(offsets_px)))
    top_a = np.empty((n, k, 3, 3))
    top_o = np.empty((n, k, 2))
    top_s = np.empty((n, k))
    m = data.kxy.shape[0]
    chunk = max(1, 3_000_000 // (n_d * m))
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        cand = np.einsum("dij,njk->ndik", deltas, rotations[lo:hi])  # (c, D, 3, 3)
        p = cutter.cut(cand.reshape(-1, 3, 3), data.kxy).reshape(hi - lo, n_d, m)
        shifts = origins_px[lo:hi, None, :] + offsets_px[None]  # (c, S, 2)
        ph = _phases(data.kxy, shifts, data.box)
        rows = np.arange(hi - lo)
        if scorer is not None:
            order, top_vals = scorer.top(data.cx[lo:hi], data.c2w[lo:hi], p, ph, k)
            flat, best[lo:hi] = order[:, 0], top_vals[:, 0]
        else:
            y = data.cx[lo:hi, None, :] * ph * data.w
            a = np.matmul(_as_real(y), np.swapaxes(_as_real(p), 1, 2))  # (c, S, D)
            b2 = np.einsum("cm,cdm->cd", data.c2w[lo:hi], np.abs(p) ** 2)
            flat_all = (a / np.sqrt(np.maximum(b2, 1e-30))[:, None, :]).reshape(hi - lo, -1)
            flat = flat_all.argmax(axis=1)
            best[lo:hi] = flat_all[rows, flat]
            order = np.argsort(-flat_all, axis=1)[:, :k]
            top_vals = np.take_along_axis(flat_all, order, axis=1)
        s_idx, d_idx = np.divmod(flat, n_d)
        new_a[lo:hi] = cand[rows, d_idx]
        new_o[lo:hi] = shifts[rows, s_idx]
        ts, td = np.divmod(order, n_d)
        top_a[lo:hi] = cand[rows[:, None], td]
        top_o[lo:hi] = shifts[rows[:, None], ts]
        top_s[lo:hi] = top_vals
    weights = pose_weights(top_s, data.x2w, data.n_eff) if k > 1 else np.ones((n, 1))
    return new_a, new_o, best, Poses(top_a, top_o, weights)
