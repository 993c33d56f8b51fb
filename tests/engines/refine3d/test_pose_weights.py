"""Posterior weights of candidate poses (refine3d's ``poses`` > 1) against the exact Gaussian
posterior: one image of known noise, scored at 27 poses around the true one."""

from __future__ import annotations

import numpy as np

from cryolive.engines.recon3d import euler_to_matrix, frequency_grid, phantom
from cryolive.engines.refine3d import (
    SliceCutter,
    local_search,
    perturbations,
    pose_weights,
    search_data,
)

BOX, K_MAX, SIGMA2 = 24, 8, 4.0


def test_weights_are_the_gaussian_posterior_over_the_candidates() -> None:
    rng = np.random.default_rng(3)
    cutter = SliceCutter(phantom(BOX, np.random.default_rng(1)))
    truth = euler_to_matrix(np.array([[20.0, 50.0, 80.0]]))
    ky, kx = frequency_grid(BOX)
    full_k = np.column_stack([kx.ravel(), ky.ravel()])
    slice_ = cutter.cut(truth, full_k).reshape(1, BOX, BOX // 2 + 1)
    ctf = np.cos(0.02 * (kx**2 + ky**2))[None].astype(np.float32)
    # complex Gaussian noise, E|N|^2 = SIGMA2 per element; signal scaled to a modest SNR
    noise = rng.normal(size=slice_.shape) + 1j * rng.normal(size=slice_.shape)
    noise *= np.sqrt(SIGMA2 / 2.0)
    scale = 0.02
    image = (ctf * slice_ * scale + noise).astype(np.complex64)
    data = search_data(image, ctf, np.full(BOX // 2 + 2, SIGMA2), K_MAX)
    deltas = perturbations(4.0)
    best_a, _, best_score, poses = local_search(
        data, cutter, truth, np.zeros((1, 2)), deltas, np.zeros((1, 2)), top=27
    )
    w = poses.weights[0]
    assert w.shape == (27,) and abs(w.sum() - 1.0) < 1e-9
    assert np.all(np.diff(w) <= 1e-12)  # best first
    assert np.allclose(poses.rotations[0, 0], best_a[0])
    assert best_score[0] > 0
    # the exact posterior: for each candidate, the weighted least-squares fit of s·C·P to the
    # image (noise known), log-likelihood -Σ col·|X - sCP|²/σ² over the searched half-plane
    shell = np.rint(np.hypot(kx, ky))
    sel = (shell >= 1) & (shell <= K_MAX)
    col = np.where(kx == 0, 0.5, 1.0)[sel]
    x = image[0][sel]
    loglik = []
    for rot in poses.rotations[0]:
        model = ctf[0][sel] * cutter.cut(rot[None], np.column_stack([kx[sel], ky[sel]]))[0]
        sw = np.sqrt(col / SIGMA2)
        design = np.concatenate([(model * sw).real, (model * sw).imag])[:, None]
        target = np.concatenate([(x * sw).real, (x * sw).imag])
        s, *_ = np.linalg.lstsq(design, target, rcond=None)
        loglik.append(-np.sum((target - design[:, 0] * s[0]) ** 2))
    ll = np.array(loglik)
    exact = np.exp(ll - ll.max())
    exact /= exact.sum()
    # the code's noise level comes from the residual (not the known σ²): close to it here
    assert np.abs(np.log(w[:10]) - np.log(exact[:10])).max() < 0.25 * np.ptp(np.log(exact[:10]))
    assert 0.05 < w[0] < 0.95  # neither a hard choice nor uniform at this SNR
    # the noise level comes from the residual: less of it (relative to w) sharpens the weights
    scores = np.array([[10.0, 9.9, 9.8]])
    sharp = pose_weights(scores, np.array([100.0 + 0.1 * data.n_eff]), data.n_eff)
    soft = pose_weights(scores, np.array([100.0 + 10.0 * data.n_eff]), data.n_eff)
    assert sharp[0, 0] > 0.8 > 0.45 > soft[0, 0] > 1 / 3
