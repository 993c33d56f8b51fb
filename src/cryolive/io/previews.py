"""Small images for the web: a micrograph's snapshot and its power spectrum, as PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from cryolive.io.png import write_png


def _binned(image: NDArray[np.floating], *, target_px: int) -> NDArray[np.float32]:
    """Block-average ``image`` so its larger side is about ``target_px``."""
    factor = max(1, int(np.ceil(max(image.shape) / target_px)))
    ny, nx = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    blocks = np.asarray(image[:ny, :nx], dtype=np.float32)
    binned: NDArray[np.float32] = blocks.reshape(ny // factor, factor, nx // factor, factor).mean(
        axis=(1, 3)
    )
    return binned


def _stretched(
    image: NDArray[np.floating], *, low_pct: float, high_pct: float
) -> tuple[float, float]:
    low, high = np.percentile(image, [low_pct, high_pct])
    return float(low), float(high if high > low else low + 1.0)


def write_snapshot(path: Path, micrograph: NDArray[np.floating], *, target_px: int = 512) -> None:
    """A binned view of the micrograph, contrast stretched between the 1st and 99th percentile."""
    small = _binned(micrograph, target_px=target_px)
    low, high = _stretched(small, low_pct=1.0, high_pct=99.0)
    write_png(path, small, low=low, high=high)


def write_power_spectrum(
    path: Path, micrograph: NDArray[np.floating], *, box_px: int = 512
) -> None:
    """The log power spectrum averaged over tiles of ``box_px``, origin at the centre."""
    image = np.asarray(micrograph, dtype=np.float32)
    box = min(box_px, *image.shape)
    ny, nx = image.shape[0] // box, image.shape[1] // box
    grid = image[: ny * box, : nx * box].reshape(ny, box, nx, box).swapaxes(1, 2)
    tiles = grid.reshape(-1, box, box)
    tiles = tiles - tiles.mean(axis=(1, 2), keepdims=True)
    power = (np.abs(np.fft.fft2(tiles)) ** 2).mean(axis=0)
    spectrum = np.log1p(np.fft.fftshift(power))
    low, high = _stretched(spectrum, low_pct=5.0, high_pct=99.5)
    write_png(path, spectrum, low=low, high=high)
