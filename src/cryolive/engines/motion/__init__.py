"""Motion correction of cryo-EM movies: whole-frame and local alignment, exposure weighting,
gain orientation and defect correction. Pure: arrays in, a frozen :class:`MotionResult` out."""

from cryolive.engines.motion._defects import DefectMap, corrected_frame, defect_map, find_defects
from cryolive.engines.motion._dose import critical_exposure_e_per_a2, exposure_filters
from cryolive.engines.motion._eer_grouping import choose_eer_grouping
from cryolive.engines.motion._engine import (
    MAX_PATCH_NOISE_PX,
    correct_motion,
    patch_grid_for_signal,
)
from cryolive.engines.motion._errors import UnusableMovieError
from cryolive.engines.motion._field import PatchField
from cryolive.engines.motion._gain import (
    Flip,
    GainOrientation,
    GainTransform,
    detect_gain_orientation,
)
from cryolive.engines.motion._result import MotionResult
from cryolive.engines.motion._sum import shift_and_sum
from cryolive.engines.motion._torch import torch_available

__all__ = [
    "MAX_PATCH_NOISE_PX",
    "DefectMap",
    "Flip",
    "GainOrientation",
    "GainTransform",
    "MotionResult",
    "PatchField",
    "UnusableMovieError",
    "choose_eer_grouping",
    "correct_motion",
    "corrected_frame",
    "critical_exposure_e_per_a2",
    "defect_map",
    "detect_gain_orientation",
    "exposure_filters",
    "find_defects",
    "patch_grid_for_signal",
    "shift_and_sum",
    "torch_available",
]
