"""RELION's own motion correction (``relion_run_motioncorr --use_own``, RELION 3.1) as an
alternative engine: writes its inputs, runs it, reads back the sums and the shifts."""

from cryolive.adapters.relion_motioncorr._run import (
    RelionMotionError,
    RelionMotionResult,
    find_relion_motioncorr,
    run_relion_motioncorr,
)

__all__ = [
    "RelionMotionError",
    "RelionMotionResult",
    "find_relion_motioncorr",
    "run_relion_motioncorr",
]
