"""Particle extraction: boxes around picks, normalised and inverted as RELION does."""

from cryolive.engines.extract._extract import Particles, default_box_px, extract_particles

__all__ = ["Particles", "default_box_px", "extract_particles"]
