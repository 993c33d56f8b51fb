"""The typed failure of a CTF fit, and the checks that catch unusable micrographs early."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

SATURATED_FRACTION = 0.01


class CtfFitError(Exception):
    """A micrograph from which no trustworthy CTF (or ice) estimate can be made.

    Attributes
    ----------
    reason : str
        One of ``"non-finite"``, ``"blank"``, ``"saturated"``, ``"no-thon-rings"``.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def check_micrograph(image: NDArray[np.floating]) -> None:
    """Raise :class:`CtfFitError` for a NaN/inf, blank (constant) or saturated micrograph.

    Saturated means more than 1 % of the pixels sit at the image's maximum (a clipped
    detector read-out, or a white frame).
    """
    if not np.isfinite(image).all():
        bad = int(image.size - np.count_nonzero(np.isfinite(image)))
        raise CtfFitError("non-finite", f"{bad} pixels are NaN or infinite")
    low = float(image.min())
    high = float(image.max())
    if high - low <= 1e-6 * max(abs(high), abs(low), 1e-30):
        raise CtfFitError("blank", f"the micrograph is constant ({high:g})")
    at_max = np.count_nonzero(image == high) / image.size
    if at_max > SATURATED_FRACTION:
        raise CtfFitError(
            "saturated", f"{100 * at_max:.1f} % of the pixels sit at the maximum value {high:g}"
        )
