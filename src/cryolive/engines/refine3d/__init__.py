"""Gold-standard 3D refinement (point groups Cn, Dn) by projection matching: half sets refined
against their own references, global then local orientation and translation searches with
auto-sampling, CTF Wiener reconstruction (symmetrised) and FSC between the half maps. Pure
NumPy/SciPy, no files; the searches' products optionally in PyTorch (``device=``).
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
from cryolive.engines.refine3d._search import (
    Poses,
    SliceCutter,
    global_search,
    local_search,
    perturbations,
    pose_weights,
    search_data,
)
from cryolive.engines.refine3d._torch import torch_available, torch_device

__all__ = [
    "HalfMaps",
    "Iteration",
    "Poses",
    "Refine3DResult",
    "SliceCutter",
    "asymmetric_unit_grid",
    "fold_to_asymmetric_unit",
    "global_search",
    "in_asymmetric_unit",
    "local_search",
    "lowpass",
    "perturbations",
    "pose_weights",
    "reconstruct_halves",
    "refine3d",
    "search_data",
    "soft_sphere",
    "symmetry_rotations",
    "torch_available",
    "torch_device",
]
