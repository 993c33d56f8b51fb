"""Map filters the refinement applies to its references: low-pass and a soft spherical mask."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def lowpass(
    volume: NDArray[np.floating], shell: float, *, edge: float = 2.0
) -> NDArray[np.float32]:
    """Keep shells below ``shell`` (frequency indices), a raised-cosine edge ``edge`` wide."""
    v = np.asarray(volume, dtype=np.float64)
    box = v.shape[0]
    k = np.fft.fftfreq(box, d=1.0 / box)
    kx = np.arange(box // 2 + 1)
    r = np.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + kx[None, None, :] ** 2)
    t = np.clip((r - shell) / max(edge, 1e-6), 0.0, 1.0)
    filt = 0.5 * (1.0 + np.cos(np.pi * t))
    out = np.fft.irfftn(np.fft.rfftn(v) * filt, s=v.shape, axes=(0, 1, 2))
    return np.asarray(out, dtype=np.float32)


def soft_sphere(box: int, radius_px: float, *, edge_px: float = 3.0) -> NDArray[np.float32]:
    """(b, b, b) mask: 1 inside ``radius_px`` of the centre, a cosine fall to 0 over ``edge_px``."""
    c = np.arange(box) - box // 2
    r = np.sqrt(c[:, None, None] ** 2 + c[None, :, None] ** 2 + c[None, None, :] ** 2)
    t = np.clip((r - radius_px) / max(edge_px, 1e-6), 0.0, 1.0)
    return np.asarray(0.5 * (1.0 + np.cos(np.pi * t)), dtype=np.float32)
