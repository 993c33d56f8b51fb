"""Search ranges and priors of a CTF fit."""

from __future__ import annotations

import math
from dataclasses import dataclass

BOX_A = 512.0


@dataclass(frozen=True, kw_only=True)
class CtfSearch:
    """Where to look for the CTF, and how.

    Attributes
    ----------
    box_px : int or None
        Edge of the tiles whose power spectra are averaged, pixels (even, >= 64). None:
        about ``BOX_A`` (512 Å) in pixels, a multiple of 32 in [128, 1024], so that rings stay
        several spectrum pixels apart whatever the pixel size.
    min_res_a, max_res_a : float
        Resolution band fitted, Å (``min_res_a`` > ``max_res_a``).
    min_defocus_a, max_defocus_a : float
        Range of mean defocus searched, Å; positive is underfocus.
    defocus_step_a : float
        Step of the 1D defocus search, Å.
    max_astigmatism_a : float
        Largest astigmatism (U - V) allowed, Å: a prior on the 2D refinement.
    fit_phase_shift : bool
        Fit an additional phase shift (phase plate) as well. A power spectrum fixes it only
        modulo 180° (sin²χ has period π); a range of 180° or more is searched whole and the
        result given in [min_phase_shift_deg, min_phase_shift_deg + 180).
    min_phase_shift_deg, max_phase_shift_deg, phase_shift_step_deg : float
        Range and search step of the phase shift, degrees.
    known_astigmatism_a : float or None
        A known astigmatism (U - V, Å) held fixed, with ``known_astigmatism_angle_deg`` (the
        U axis, degrees from +x towards +y): only the mean defocus (and phase) is fitted, as
        CTFFIND's "known astigmatism". None: astigmatism is fitted.
    known_astigmatism_angle_deg : float
        Angle of the known astigmatism's U axis, degrees.
    """

    box_px: int | None = None
    min_res_a: float = 30.0
    max_res_a: float = 5.0
    min_defocus_a: float = 3000.0
    max_defocus_a: float = 50000.0
    defocus_step_a: float = 100.0
    max_astigmatism_a: float = 2000.0
    fit_phase_shift: bool = False
    min_phase_shift_deg: float = 0.0
    max_phase_shift_deg: float = 180.0
    phase_shift_step_deg: float = 10.0
    known_astigmatism_a: float | None = None
    known_astigmatism_angle_deg: float = 0.0

    def box_for(self, pixel_size_a: float, image_shape: tuple[int, ...] | None = None) -> int:
        """The tile edge in pixels for ``pixel_size_a`` (Å); an automatic box also leaves at
        least 2 x 2 tiles in an image of ``image_shape``."""
        if self.box_px is not None:
            return self.box_px
        box = int(min(1024, max(128, 32 * round(BOX_A / pixel_size_a / 32))))
        if image_shape is not None:
            box = max(64, min(box, 32 * (min(image_shape) // 64)))
        return box

    @property
    def fixed_astigmatism(self) -> tuple[float, float] | None:
        """The known astigmatism as the (a1, a2) components of χ (Å), or None."""
        if self.known_astigmatism_a is None:
            return None
        half = 0.5 * self.known_astigmatism_a
        two = math.radians(2.0 * self.known_astigmatism_angle_deg)
        return half * math.cos(two), half * math.sin(two)

    @property
    def phase_wraps(self) -> bool:
        """The phase-shift range covers a whole period (180°)."""
        return self.max_phase_shift_deg - self.min_phase_shift_deg >= 180.0

    def __post_init__(self) -> None:
        if self.box_px is not None and (self.box_px < 64 or self.box_px % 2):
            raise ValueError(f"box_px must be even and >= 64, got {self.box_px}")
        if not self.min_res_a > self.max_res_a > 0:
            raise ValueError(
                f"min_res_a ({self.min_res_a}) must exceed max_res_a ({self.max_res_a}) > 0"
            )
        if not self.max_defocus_a > self.min_defocus_a:
            raise ValueError(
                f"max_defocus_a ({self.max_defocus_a}) must exceed "
                f"min_defocus_a ({self.min_defocus_a})"
            )
        if not self.defocus_step_a > 0:
            raise ValueError(f"defocus_step_a must be positive, got {self.defocus_step_a}")
        if not self.max_astigmatism_a >= 0:
            raise ValueError(f"max_astigmatism_a must be >= 0, got {self.max_astigmatism_a}")
        if self.known_astigmatism_a is not None and not self.known_astigmatism_a >= 0:
            raise ValueError(
                f"known_astigmatism_a must be >= 0 (U - V), got {self.known_astigmatism_a}"
            )
        if not self.max_phase_shift_deg >= self.min_phase_shift_deg:
            raise ValueError("max_phase_shift_deg must be >= min_phase_shift_deg")
        if not self.phase_shift_step_deg > 0:
            raise ValueError(
                f"phase_shift_step_deg must be positive, got {self.phase_shift_step_deg}"
            )
