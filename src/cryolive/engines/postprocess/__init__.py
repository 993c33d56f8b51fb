"""Post-processing of half maps (solvent mask, corrected FSC, resolution, B-factor, sharpening)
and the B-factor plot (resolution against the number of particles). Pure NumPy/SciPy."""

from cryolive.engines.postprocess._bfactor_plot import (
    BfactorSeries,
    bfactor_fit,
    bfactor_series,
    doubling_counts,
)
from cryolive.engines.postprocess._mask import auto_mask, soft_edge, solvent_threshold
from cryolive.engines.postprocess._postprocess import (
    FscCurves,
    GuinierPlot,
    PostprocessError,
    PostprocessResult,
    postprocess,
    randomise_phases,
)

__all__ = [
    "BfactorSeries",
    "FscCurves",
    "GuinierPlot",
    "PostprocessError",
    "PostprocessResult",
    "auto_mask",
    "bfactor_fit",
    "bfactor_series",
    "doubling_counts",
    "postprocess",
    "randomise_phases",
    "soft_edge",
    "solvent_threshold",
]
