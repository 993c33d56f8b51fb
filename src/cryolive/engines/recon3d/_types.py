"""The particles 3D work takes: images, their CTF, and (when known) angles and origins."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class ParticleStack3D:
    """Particle images with what RELION's particles.star says of each.

    Attributes
    ----------
    images : (n, b, b) float32
        White particles (contrast inverted), not CTF-corrected.
    pixel_size_a, voltage_kv, cs_mm, amplitude_contrast : float
        The optics (one group).
    defocus : (n, 3) float64
        rlnDefocusU, rlnDefocusV (Å, positive underfocus), rlnDefocusAngle (degrees).
    angles_deg : (n, 3) float64 or None
        rlnAngleRot, rlnAngleTilt, rlnAnglePsi when the file has them.
    origins_a : (n, 2) float64 or None
        The image is its projection moved by this (Å, x then y): minus RELION's
        rlnOriginXAngst, rlnOriginYAngst (which move the particle onto the box centre);
        :mod:`cryolive.io.particle_files` turns the sign when it reads and writes.
    subset : (n,) int or None
        rlnRandomSubset (1 or 2) for gold-standard half sets.
    """

    images: NDArray[np.float32]
    pixel_size_a: float
    defocus: NDArray[np.float64]
    voltage_kv: float = 300.0
    cs_mm: float = 2.7
    amplitude_contrast: float = 0.1
    angles_deg: NDArray[np.float64] | None = None
    origins_a: NDArray[np.float64] | None = None
    subset: NDArray[np.int64] | None = None

    def __post_init__(self) -> None:
        if self.images.ndim != 3 or self.images.shape[1] != self.images.shape[2]:
            raise ValueError(f"images: must be (n, b, b), got {self.images.shape}")
        n = self.images.shape[0]
        if np.shape(self.defocus) != (n, 3):
            raise ValueError(f"defocus: need ({n}, 3), got {np.shape(self.defocus)}")
        if self.angles_deg is not None and np.shape(self.angles_deg) != (n, 3):
            raise ValueError(f"angles_deg: need ({n}, 3), got {np.shape(self.angles_deg)}")
        if self.origins_a is not None and np.shape(self.origins_a) != (n, 2):
            raise ValueError(f"origins_a: need ({n}, 2), got {np.shape(self.origins_a)}")
        if self.subset is not None and np.shape(self.subset) != (n,):
            raise ValueError(f"subset: need ({n},), got {np.shape(self.subset)}")
        if not self.pixel_size_a > 0:
            raise ValueError(f"pixel_size_a must be positive, got {self.pixel_size_a}")

    @property
    def count(self) -> int:
        return int(self.images.shape[0])

    @property
    def box(self) -> int:
        return int(self.images.shape[1])
