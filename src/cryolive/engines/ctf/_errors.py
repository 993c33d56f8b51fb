"""The typed failure of a CTF fit."""

from __future__ import annotations

from cryolive.engines._checks import UnusableMicrographError
from cryolive.engines.ctf._result import CtfFit


class CtfFitError(UnusableMicrographError):
    """No trustworthy CTF: ``reason`` is ``"non-finite"``, ``"blank"``, ``"saturated"`` or
    ``"no-thon-rings"``.

    ``best_guess`` is the fit made anyway where a spectrum could be computed (no Thon rings
    stood out from the noise): its result, curves and diagnostic image, for a person to look
    at, never to use as the micrograph's CTF. None for a micrograph with no usable pixels.
    """

    def __init__(self, reason: str, detail: str, *, best_guess: CtfFit | None = None) -> None:
        super().__init__(reason, detail)
        self.best_guess = best_guess
