"""CTF estimation: fit defocus, astigmatism and phase shift to a micrograph's power spectrum.

Conventions: defocus in Å, positive is underfocus; angles in degrees, from +x (image axis 1)
towards +y (axis 0); the CTF is -sin χ with χ = π λ Δf k² - π/2 Cs λ³ k⁴ + φ + arcsin(A).
"""

from cryolive.engines.ctf._errors import CtfFitError
from cryolive.engines.ctf._estimate import estimate_ctf
from cryolive.engines.ctf._physics import (
    Aberration,
    Optics,
    astigmatism_components,
    ctf_2d,
    electron_wavelength_a,
)
from cryolive.engines.ctf._result import CtfCurves, CtfFit, CtfResult
from cryolive.engines.ctf._settings import CtfSearch

__all__ = [
    "Aberration",
    "CtfCurves",
    "CtfFit",
    "CtfFitError",
    "CtfResult",
    "CtfSearch",
    "Optics",
    "astigmatism_components",
    "ctf_2d",
    "electron_wavelength_a",
    "estimate_ctf",
]
