"""The diagnostic image: the centred spectrum, data on the left half and fitted model on the
right."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from cryolive.engines.ctf._physics import Aberration
from cryolive.engines.ctf._spectrum import Grid


def full_plane(half: NDArray[np.float64]) -> NDArray[np.float64]:
    """Centred (box, box) plane of a real signal's spectrum from its (box, box//2+1) rfft half."""
    box = half.shape[0]
    full = np.empty((box, box))
    full[:, : box // 2 + 1] = half
    rows = (-np.arange(box)) % box
    full[:, box // 2 + 1 :] = half[rows][:, box // 2 - 1 : 0 : -1]
    return np.fft.fftshift(full)


def diagnostic_image(
    spectrum: NDArray[np.float64],
    grid: Grid,
    ab: Aberration,
    p: NDArray[np.float64],
    background: NDArray[np.float64],
    envelope: NDArray[np.float64],
    r_lo: float,
    r_fit: float | None = None,
) -> NDArray[np.float32]:
    """(box, box) float32 in [0, 1]: (spectrum - B)/E left, sin²χ right, blank inside ``r_lo``.

    The model is drawn only over the rings that were fitted, ``r_lo`` to ``r_fit`` (the fit
    resolution, spectrum pixels); beyond it the right half is neutral grey, so that the
    picture never shows rings the data did not confirm. ``background`` and ``envelope`` are
    sampled at every integer radius (pixels).
    """
    radius = np.minimum(np.rint(grid.r_px).astype(np.intp), background.size - 1)
    scale = np.maximum(envelope[radius], 1e-3 * float(np.abs(envelope).max()))
    data = np.clip((spectrum - background[radius]) / scale, -0.5, 1.5)
    data = (data + 0.5) / 2.0
    model = np.sin(ab.chi(p[0], p[1], p[2], p[3])) ** 2
    inner = grid.r_px < r_lo
    data[inner] = 0.5
    model[inner] = 0.5
    if r_fit is not None:
        model[grid.r_px > max(r_fit, r_lo)] = 0.5
    left = full_plane(data)
    right = full_plane(model)
    box = grid.box_px
    out = left
    out[:, box // 2 :] = right[:, box // 2 :]
    return out.astype(np.float32)
