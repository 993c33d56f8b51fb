"""Averaged tile power spectra and their frequency grids."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Grid:
    """Frequencies of an rfft spectrum: ``kx``, ``ky`` (Å⁻¹) and radius ``r_px`` (pixels)."""

    kx: NDArray[np.float64]
    ky: NDArray[np.float64]
    r_px: NDArray[np.float64]
    box_px: int
    pixel_size_a: float

    @classmethod
    def of(cls, box_px: int, pixel_size_a: float) -> Grid:
        ky1 = np.fft.fftfreq(box_px)[:, None]
        kx1 = np.fft.rfftfreq(box_px)[None, :]
        kx, ky = np.broadcast_arrays(kx1, ky1)
        r_px = np.hypot(kx, ky) * box_px
        return cls(
            kx=kx / pixel_size_a,
            ky=ky / pixel_size_a,
            r_px=r_px,
            box_px=box_px,
            pixel_size_a=pixel_size_a,
        )

    def radius_px(self, resolution_a: float) -> float:
        """Radius in the spectrum, pixels, of a spacing ``resolution_a`` (Å)."""
        return self.box_px * self.pixel_size_a / resolution_a

    def off_axes(self) -> NDArray[np.bool_]:
        """False on the kx = 0 and ky = 0 lines, where tile edges leak power."""
        return (np.abs(self.kx) > 0) & (np.abs(self.ky) > 0)
