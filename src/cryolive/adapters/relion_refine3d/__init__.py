"""RELION 3.1's 3D programs as alternative engines for the 3D steps: ``relion_refine
--denovo_3dref --sgd`` (initial model), ``relion_refine --ref --K`` (3D classification),
``relion_refine_mpi --auto_refine`` (gold-standard refinement), ``relion_mask_create`` and
``relion_postprocess``. Each runs on the files the cryolive command reads and leaves the files
the cryolive command writes (same names and STAR labels), so the 3D services, the writer and the
web read either engine's output unchanged; RELION's own files stay in ``OUT/relion/``."""

from cryolive.adapters.relion_refine3d._classify import (
    RelionClasses,
    run_relion_class3d,
    run_relion_initial_model,
)
from cryolive.adapters.relion_refine3d._postprocess import RelionPostprocess, run_relion_postprocess
from cryolive.adapters.relion_refine3d._process import Relion3DError, RelionMissingError
from cryolive.adapters.relion_refine3d._refine import RelionRefine3D, run_relion_refine3d

__all__ = [
    "Relion3DError",
    "RelionClasses",
    "RelionMissingError",
    "RelionPostprocess",
    "RelionRefine3D",
    "run_relion_class3d",
    "run_relion_initial_model",
    "run_relion_postprocess",
    "run_relion_refine3d",
]
