"""Gold-standard 3D refinement (point groups Cn, Dn) by projection matching: half sets refined
against their own references, global then local orientation and translation searches with
auto-sampling, CTF Wiener reconstruction (symmetrised) and FSC between the half maps. Pure
NumPy/SciPy, no files.
"""

from cryolive.engines._search3d import symmetry_rotations
from cryolive.engines.refine3d._maps import lowpass, soft_sphere
from cryolive.engines.refine3d._refine import (
    HalfMaps,
    Iteration,
    Refine3DResult,
    asymmetric_unit_grid,
    fold_to_asymmetric_unit,
    in_asymmetric_unit,
    reconstruct_halves,
    refine3d,
)

__all__ = [
    "HalfMaps",
    "Iteration",
    "Refine3DResult",
    "asymmetric_unit_grid",
    "fold_to_asymmetric_unit",
    "in_asymmetric_unit",
    "lowpass",
    "reconstruct_halves",
    "refine3d",
    "soft_sphere",
    "symmetry_rotations",
]
