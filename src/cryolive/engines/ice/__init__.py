"""Relative ice thickness of a micrograph, from how much of the beam its ice removes."""

from cryolive.engines.ice._estimate import IceThickness, IceThicknessError, estimate_ice_thickness

__all__ = ["IceThickness", "IceThicknessError", "estimate_ice_thickness"]
