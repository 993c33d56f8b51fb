"""3D classification of particles from one reference: class maps, per-particle class and
angles, class distribution, per-class resolution and angular efficiency, a ranking score."""

from cryolive.engines.class3d._classify import Class3DResult, classify3d
from cryolive.engines.class3d._metrics import angular_efficiency

__all__ = ["Class3DResult", "angular_efficiency", "classify3d"]
