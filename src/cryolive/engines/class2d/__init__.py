"""Reference-free 2D classification of particle images (CTF-aware, in-plane rotation and
translation search, expectation-maximisation over mini-batches), class scores for selection.
"""

from cryolive.engines.class2d._evaluate import Class2DQuality, evaluate_classes
from cryolive.engines.class2d._types import Class2DResult, Class2DSettings, ParticleSet

__all__ = [
    "Class2DQuality",
    "Class2DResult",
    "Class2DSettings",
    "ParticleSet",
    "evaluate_classes",
]
