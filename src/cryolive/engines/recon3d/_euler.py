"""Euler angles as RELION reads them: rot, tilt, psi (degrees), ZYZ.

RELION's matrix ``A`` for (rot, tilt, psi) takes a volume's coordinates to the image's:
``x_image = A · r_volume``; the 2D Fourier transform of the projection at ``A`` is the central
slice of the volume's transform through ``Aᵀ · (kx, ky, 0)``. ``A`` is the transpose of the
active intrinsic rotation Rz(rot) · Ry(tilt) · Rz(psi).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial.transform import Rotation


def euler_to_matrix(angles_deg: ArrayLike) -> NDArray[np.float64]:
    """(n, 3) rot, tilt, psi in degrees → (n, 3, 3) RELION matrices ``A``."""
    angles = np.atleast_2d(np.asarray(angles_deg, dtype=np.float64))
    if angles.shape[-1] != 3:
        raise ValueError(f"angles: need (n, 3) rot, tilt, psi, got {angles.shape}")
    active = Rotation.from_euler("ZYZ", angles, degrees=True).as_matrix()
    return np.ascontiguousarray(np.swapaxes(active, -1, -2))


def matrix_to_euler(matrices: ArrayLike) -> NDArray[np.float64]:
    """(n, 3, 3) RELION matrices → (n, 3) rot, tilt, psi in degrees (tilt in [0, 180])."""
    a = np.asarray(matrices, dtype=np.float64).reshape(-1, 3, 3)
    active = np.swapaxes(a, -1, -2)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # gimbal lock at tilt 0/180: rot+psi still right
            angles = Rotation.from_matrix(active).as_euler("ZYZ", degrees=True)
    return np.asarray(angles, dtype=np.float64)


def random_rotations(n: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """``n`` rotations uniform on SO(3), as (n, 3, 3) matrices."""
    return np.asarray(Rotation.random(n, random_state=rng).as_matrix(), dtype=np.float64)


def angular_distance_deg(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """Angle (degrees) of the rotation taking each ``a`` to each ``b``; (n, 3, 3) each."""
    ra = np.asarray(a, dtype=np.float64).reshape(-1, 3, 3)
    rb = np.asarray(b, dtype=np.float64).reshape(-1, 3, 3)
    trace = np.einsum("nij,nij->n", ra, rb)
    return np.asarray(np.degrees(np.arccos(np.clip((trace - 1.0) / 2.0, -1.0, 1.0))), np.float64)


def orientation_grid(step_deg: float) -> NDArray[np.float64]:
    """Rotations covering SO(3) about every ``step_deg``: Fibonacci directions x in-plane psi.

    Returns (n, 3, 3) RELION matrices. The directions (rot, tilt) are a Fibonacci lattice with
    neighbours ~``step_deg`` apart; psi in steps of ``step_deg``.
    """
    if not 0.5 <= step_deg <= 90:
        raise ValueError(f"step_deg must lie in [0.5, 90], got {step_deg}")
    n_dirs = max(2, round(4 * np.pi / np.radians(step_deg) ** 2))
    k = np.arange(n_dirs) + 0.5
    tilt = np.degrees(np.arccos(1 - 2 * k / n_dirs))
    rot = (np.degrees(np.pi * (1 + 5**0.5) * k)) % 360.0
    n_psi = max(1, round(360.0 / step_deg))
    psi = np.arange(n_psi) * (360.0 / n_psi)
    angles = np.stack([np.repeat(rot, n_psi), np.repeat(tilt, n_psi), np.tile(psi, n_dirs)], axis=1)
    return euler_to_matrix(angles)
