"""Reference-free 2D classification of particle images (CTF-aware, in-plane rotation and
translation search, expectation-maximisation over mini-batches), class scores for selection.
"""

from cryolive.engines.class2d._classify import classify_2d
from cryolive.engines.class2d._evaluate import Class2DQuality, evaluate_classes
from cryolive.engines.class2d._frc import frc, resolution_at
from cryolive.engines.class2d._geometry import fourier_crop
from cryolive.engines.class2d._score import score_classes
from cryolive.engines.class2d._types import Class2DResult, Class2DSettings, ParticleSet

__all__ = [
    "Class2DQuality",
    "Class2DResult",
    "Class2DSettings",
    "ParticleSet",
    "classify_2d",
    "evaluate_classes",
    "fourier_crop",
    "frc",
    "resolution_at",
    "score_classes",
]
