"""RELION's 2D classification (``relion_refine``, RELION 3.1) as an alternative engine: runs
it on a particles STAR file and reads the last iteration back as a :class:`Class2DResult`."""

from cryolive.adapters.relion_class2d._run import (
    RelionClass2DError,
    find_relion_refine,
    run_relion_class2d,
)

__all__ = ["RelionClass2DError", "find_relion_refine", "run_relion_class2d"]
