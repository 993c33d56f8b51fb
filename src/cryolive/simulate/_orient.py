"""Particle orientations as ZYZ Euler angles (degrees) and their rotation matrices."""

from __future__ import annotations

import numpy as np


def euler_zyz_matrix(rot_deg: np.ndarray, tilt_deg: np.ndarray, psi_deg: np.ndarray) -> np.ndarray:
    """Rotation matrices R = Rz(psi) @ Ry(tilt) @ Rz(rot), shape (n, 3, 3) float64.

    A particle's model coordinates r (Å, centred) are placed as R @ r and projected along z.
    """
    a, b, c = (np.deg2rad(np.asarray(v, dtype=np.float64)) for v in (rot_deg, tilt_deg, psi_deg))

    def rz(t: np.ndarray) -> np.ndarray:
        m = np.zeros((*t.shape, 3, 3))
        m[..., 0, 0] = np.cos(t)
        m[..., 0, 1] = -np.sin(t)
        m[..., 1, 0] = np.sin(t)
        m[..., 1, 1] = np.cos(t)
        m[..., 2, 2] = 1.0
        return m

    ry = np.zeros((*b.shape, 3, 3))
    ry[..., 0, 0] = np.cos(b)
    ry[..., 0, 2] = np.sin(b)
    ry[..., 1, 1] = 1.0
    ry[..., 2, 0] = -np.sin(b)
    ry[..., 2, 2] = np.cos(b)
    return np.asarray(rz(c) @ ry @ rz(a), dtype=np.float64)


def random_orientations(
    n: int, rng: np.random.Generator, *, preferred_view_kappa: float = 0.0
) -> np.ndarray:
    """Draw ``n`` orientations, (n, 3) float64 columns rot, tilt, psi in degrees.

    Parameters
    ----------
    preferred_view_kappa
        0 draws uniformly over SO(3) (cos tilt uniform in [-1, 1]). A positive value
        concentrates the viewing direction around tilt = 0 (a "top view") with a von
        Mises-Fisher distribution of that concentration; rot and psi stay uniform.
    """
    if n < 0:
        raise ValueError(f"n: must be non-negative, got {n}")
    if preferred_view_kappa < 0:
        raise ValueError(f"preferred_view_kappa: must be >= 0, got {preferred_view_kappa}")
    rot = rng.uniform(0.0, 360.0, n)
    psi = rng.uniform(0.0, 360.0, n)
    u = rng.uniform(0.0, 1.0, n)
    if preferred_view_kappa == 0:
        cos_tilt = 2.0 * u - 1.0
    else:
        k = preferred_view_kappa
        cos_tilt = 1.0 + np.log(u + (1.0 - u) * np.exp(-2.0 * k)) / k
    tilt = np.rad2deg(np.arccos(np.clip(cos_tilt, -1.0, 1.0)))
    return np.stack([rot, tilt, psi], axis=1)
