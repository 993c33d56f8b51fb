"""Gold-standard 3D refinement (C1) by projection matching: half sets refined against their own
references, global then local orientation and translation searches with auto-sampling, CTF
Wiener reconstruction and FSC between the half maps. Pure NumPy/SciPy, no files.
"""

from cryolive.engines.refine3d._maps import lowpass, soft_sphere
from cryolive.engines.refine3d._refine import (
    HalfMaps,
    Iteration,
    Refine3DResult,
    reconstruct_halves,
    refine3d,
)

__all__ = [
    "HalfMaps",
    "Iteration",
    "Refine3DResult",
    "lowpass",
    "reconstruct_halves",
    "refine3d",
    "soft_sphere",
]
