"""The typed failure of a CTF fit."""

from __future__ import annotations

from cryolive.engines._checks import UnusableMicrographError


class CtfFitError(UnusableMicrographError):
    """No trustworthy CTF: ``reason`` is ``"non-finite"``, ``"blank"``, ``"saturated"`` or
    ``"no-thon-rings"``."""
