"""What a CTF fit returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, kw_only=True)
class CtfResult:
    """The fitted CTF of one micrograph.

    Conventions: defocus in Å, positive is underfocus, ``defocus_u_a`` >= ``defocus_v_a``; the
    astigmatism angle is that of the U axis, degrees in [0, 180), from +x (image axis 1)
    towards +y (axis 0); the phase shift (degrees) is added to the aberration phase χ, and
    the CTF is -sin χ.

    Attributes
    ----------
    defocus_u_a, defocus_v_a : float
        Defocus along and across the astigmatism axis, Å.
    astigmatism_angle_deg : float
        Angle of the U axis, degrees.
    phase_shift_deg : float
        Additional phase shift, degrees (0 unless fitted).
    cc : float
        Figure of merit: correlation, over the band, of the background-subtracted spectrum
        with the fitted Thon rings (envelope * sin²χ).
    fit_resolution_a : float
        Spacing (Å) up to which the fitted rings agree with the data.
    significance : float
        Held-out check, in noise standard deviations: the defocus found on half of the tiles,
        correlated with the spectrum of the other half (and vice versa; the smaller). None
        where the estimate came from another program.
    box_px, pixel_size_a, min_res_a, max_res_a : float
        Tile size and the band fitted.
    """

    defocus_u_a: float
    defocus_v_a: float
    astigmatism_angle_deg: float
    phase_shift_deg: float
    cc: float
    fit_resolution_a: float
    significance: float | None
    box_px: int
    pixel_size_a: float
    min_res_a: float
    max_res_a: float

    @property
    def defocus_a(self) -> float:
        """Mean defocus (U + V) / 2, Å."""
        return 0.5 * (self.defocus_u_a + self.defocus_v_a)

    @property
    def astigmatism_a(self) -> float:
        """U - V, Å."""
        return self.defocus_u_a - self.defocus_v_a

    def to_dict(self) -> dict[str, float | None]:
        out: dict[str, float | None] = asdict(self)
        out["defocus_a"] = self.defocus_a
        out["astigmatism_a"] = self.astigmatism_a
        return out


@dataclass(frozen=True, kw_only=True)
class CtfCurves:
    """1D profiles of the fit, against spatial frequency (Å⁻¹), for plots.

    ``data`` is the astigmatism-corrected (equiphase) average of the spectrum minus its fitted
    background; ``fit`` the fitted envelope * sin²χ; ``cc`` the local correlation of the two.
    """

    frequency_per_a: tuple[float, ...]
    data: tuple[float, ...]
    fit: tuple[float, ...]
    cc: tuple[float, ...]

    def to_dict(self) -> dict[str, list[float]]:
        return {key: [round(v, 6) for v in values] for key, values in asdict(self).items()}


@dataclass(frozen=True, kw_only=True)
class CtfFit:
    """Result, plot curves and diagnostic image of one fit.

    ``diagnostic`` is a (box_px, box_px) float32 image in [0, 1], the spectrum centred: left
    half the background-subtracted data, right half the fitted model.
    """

    result: CtfResult
    curves: CtfCurves
    diagnostic: NDArray[np.float32] = field(repr=False, compare=False)
