"""Checks every engine that reads a micrograph makes first, and the error they raise."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from cryolive.errors import BadInputError

SATURATED_FRACTION = 0.01


class UnusableMicrographError(BadInputError):
    """A micrograph from which no trustworthy estimate can be made.

    Attributes
    ----------
    reason : str
        A short code: ``"non-finite"``, ``"blank"``, ``"saturated"``, or one an engine adds
        (e.g. ``"no-thon-rings"``).
    detail : str
        What was found, for a person.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def check_micrograph(
    image: NDArray[np.generic], error: type[UnusableMicrographError] = UnusableMicrographError
) -> None:
    """Raise ``error`` for a NaN/inf, blank (constant) or saturated micrograph.

    Saturated means more than 1 % of the pixels sit at the image's maximum (a clipped
    read-out, or a white frame).
    """
    low = float(image.min())
    high = float(image.max())  # NaN and inf propagate into min/max: one pass finds them
    if not (np.isfinite(low) and np.isfinite(high)):
        bad = int(image.size - np.count_nonzero(np.isfinite(image)))
        raise error("non-finite", f"{bad} pixels are NaN or infinite")
    if high - low <= 1e-6 * max(abs(high), abs(low), 1e-30):
        raise error("blank", f"the micrograph is constant ({high:g})")
    at_max = np.count_nonzero(image == high) / image.size
    if at_max > SATURATED_FRACTION:
        raise error(
            "saturated", f"{100 * at_max:.1f} % of the pixels sit at the maximum value {high:g}"
        )
