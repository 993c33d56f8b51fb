"""Exposure (dose) weighting with the critical-exposure curve of Grant & Grigorieff (2015)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

# Grant & Grigorieff 2015, eLife 4:e06980, doi:10.7554/eLife.06980, fit to their 2.6 Å
# rotavirus VP6 data at 300 kV: N_e(k) = a k^b + c (N_e in e/Å², k in 1/Å).
_A, _B, _C = 0.245, -1.665, 2.81
# Critical exposure at 200 kV taken as 0.8 times that at 300 kV, the factor Unblur and
# cisTEM apply (Grant & Grigorieff 2015, Methods).
_VOLTAGE_SCALE = {300.0: 1.0, 200.0: 0.8}


def critical_exposure_e_per_a2(
    k_per_a: NDArray[np.floating], *, voltage_kv: float = 300.0
) -> NDArray[np.float32]:
    """Critical exposure N_e(k) (e/Å²) at spatial frequency ``k_per_a`` (1/Å).

    Parameters
    ----------
    k_per_a : array
        Spatial frequencies (1/Å), any shape; 0 is treated as 1e-4 1/Å (N_e very large).
    voltage_kv : float
        300 or 200 (kV).

    Returns
    -------
    (same shape as ``k_per_a``) float32

    References
    ----------
    Grant T, Grigorieff N (2015) Measuring the optimal exposure for single particle cryo-EM
    using a 2.6 Å reconstruction of rotavirus VP6. eLife 4:e06980. doi:10.7554/eLife.06980
    """
    scale = _VOLTAGE_SCALE.get(float(voltage_kv))
    if scale is None:
        raise ValueError(
            f"voltage_kv: critical exposure is published for {sorted(_VOLTAGE_SCALE)} kV, "
            f"got {voltage_kv}"
        )
    k = np.maximum(np.asarray(k_per_a, dtype=np.float64), 1e-4)
    return np.asarray(scale * (_A * k**_B + _C), dtype=np.float32)


def exposure_filters(
    k_per_a: NDArray[np.floating],
    *,
    n_frames: int,
    dose_per_frame_e_per_a2: float,
    pre_exposure_e_per_a2: float = 0.0,
    voltage_kv: float = 300.0,
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Per-frame attenuation q_t(k) and the normalisation that keeps the noise power.

    q_t(k) = exp(-N_t / (2 N_e(k))) with N_t the exposure at the middle of frame t. The
    dose-weighted sum is ``sum_t q_t(k) F_t(k) * norm(k)`` with
    ``norm(k) = sqrt(n / sum_t q_t(k)^2)``: white (counting) noise keeps the power it has in
    the plain sum, and where no damage has happened (q = 1) the two sums agree.

    Parameters
    ----------
    k_per_a : array
        Spatial frequencies (1/Å), any shape.
    n_frames : int
        Number of frames.
    dose_per_frame_e_per_a2 : float
        Exposure per frame (e/Å²).
    pre_exposure_e_per_a2 : float
        Exposure before the first frame (e/Å²).
    voltage_kv : float
        300 or 200 (kV).

    Returns
    -------
    q : (n_frames, *k.shape) float32
    norm : k.shape float32
    """
    if n_frames < 1:
        raise ValueError(f"n_frames: must be at least 1, got {n_frames}")
    if not dose_per_frame_e_per_a2 > 0:
        raise ValueError(
            f"dose_per_frame_e_per_a2: must be positive, got {dose_per_frame_e_per_a2}"
        )
    if pre_exposure_e_per_a2 < 0:
        raise ValueError(f"pre_exposure_e_per_a2: must be >= 0, got {pre_exposure_e_per_a2}")
    ne = critical_exposure_e_per_a2(k_per_a, voltage_kv=voltage_kv).astype(np.float64)
    exposure = pre_exposure_e_per_a2 + (np.arange(n_frames) + 0.5) * dose_per_frame_e_per_a2
    q = np.exp(-exposure.reshape((-1,) + (1,) * ne.ndim) / (2.0 * ne))
    norm = np.sqrt(n_frames / np.maximum((q * q).sum(axis=0), 1e-30))
    return q.astype(np.float32), norm.astype(np.float32)
