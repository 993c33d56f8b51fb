"""What a picker returns, and the CTF it may be told."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, kw_only=True)
class MicrographCtf:
    """The CTF of one micrograph, as the template matcher and extraction need it.

    Conventions as in :mod:`cryolive.engines.ctf`: defocus in Å, positive is underfocus; the
    astigmatism angle (degrees) is that of the U axis, from +x (axis 1) towards +y (axis 0).
    """

    defocus_u_a: float
    defocus_v_a: float
    astigmatism_angle_deg: float = 0.0
    phase_shift_deg: float = 0.0
    voltage_kv: float = 300.0
    cs_mm: float = 2.7
    amplitude_contrast: float = 0.07

    def __post_init__(self) -> None:
        if not (self.defocus_u_a > 0 and self.defocus_v_a > 0):
            raise ValueError(
                f"defocus_u_a, defocus_v_a: must be positive (underfocus), got "
                f"{self.defocus_u_a}, {self.defocus_v_a}"
            )
        if not self.voltage_kv > 0:
            raise ValueError(f"voltage_kv: must be positive, got {self.voltage_kv}")
        if not 0 <= self.amplitude_contrast < 1:
            raise ValueError(
                f"amplitude_contrast: must be in [0, 1), got {self.amplitude_contrast}"
            )


@dataclass(frozen=True, kw_only=True)
class Picks:
    """Particles picked on one micrograph.

    Attributes
    ----------
    x_px, y_px : (n,) float32
        Particle centres in pixels of the micrograph given (x along axis 1, y along axis 0,
        from the centre of the top-left pixel), highest score first.
    scores : (n,) float32
        Peak height in standard deviations of the score map's background.
    diameters_a : (n,) float32
        Diameter (Å) of the filter that answered best at each pick (LoG) or the template's.
    diameter_a : float
        The particle diameter the picks stand for (the median of ``diameters_a``, or the
        middle of the range asked for when nothing was picked), Å.
    pixel_size_a : float
        Pixel size of the micrograph, Å.
    working_pixel_size_a : float
        Pixel size at which the picker worked, Å.
    method : "log", "template" or "topaz"
    threshold : float
        The score a pick had to exceed, in background standard deviations (given, or set
        from the micrograph's own local maxima).
    rejected_bad_area : int
        Peaks above the threshold dropped because they lay on carbon, contamination or
        another area whose intensity departs from the clear ice.
    bad_area : (yw, xw) bool
        That area, at the working pixel size (for the overlay image).
    """

    x_px: NDArray[np.float32]
    y_px: NDArray[np.float32]
    scores: NDArray[np.float32]
    diameters_a: NDArray[np.float32]
    diameter_a: float
    pixel_size_a: float
    working_pixel_size_a: float
    method: Literal["log", "template", "topaz"]
    threshold: float
    rejected_bad_area: int
    bad_area: NDArray[np.bool_] = field(repr=False, compare=False)

    def __len__(self) -> int:
        return int(self.x_px.shape[0])

    @property
    def bad_area_fraction(self) -> float:
        """Fraction of the micrograph rejected as carbon, contamination or broken ice."""
        return float(np.mean(self.bad_area)) if self.bad_area.size else 0.0
