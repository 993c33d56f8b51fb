"""The frozen result of motion correction."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cryolive.engines.motion._defects import DefectMap
from cryolive.engines.motion._field import PatchField


@dataclass(frozen=True)
class MotionResult:
    """What motion correction found and made.

    Attributes
    ----------
    shifts_px : (n, 2) float64
        Whole-frame (dy, dx) px by which the content of frame t moved relative to frame 0
        (row 0 is zero); each frame was moved back by its shift.
    pixel_size_a : float
        Pixel size of the frames and sums (Å).
    dose_per_frame_e_per_a2, pre_exposure_e_per_a2 : float
        Exposure per frame and before the first frame (e/Å²).
    total_motion_a, early_motion_a, late_motion_a : float
        Path length of the whole-frame shifts (Å): all frames; frames that end at most
        ``early_exposure_e_per_a2`` into the exposure; the rest (RELION's convention).
    dose_weighted_sum, plain_sum : (y, x) float32
        The aligned sums; the dose-weighted one filtered per frame (Grant & Grigorieff 2015)
        with the noise power of the plain sum.
    patch_field : PatchField or None
        Local motion on top of ``shifts_px`` (None when local alignment was off).
    defects : DefectMap or None
        Pixels replaced.
    iterations : int
        Whole-frame refinement iterations run.
    converged : bool
        Whether the whole-frame refinement stopped because no frame moved more than the
        tolerance (False: it stopped at ``max_iterations``).
    residual_px : float
        Largest shift update (px of the alignment frames) of the last iteration.
    patches_used : (across x, across y) or None
        The patch grid of the local alignment after the signal criterion (None: whole-frame
        only).
    patch_note : str or None
        Why fewer patches than requested were used, in words; None when none were dropped.
    """

    shifts_px: NDArray[np.float64]
    pixel_size_a: float
    dose_per_frame_e_per_a2: float
    pre_exposure_e_per_a2: float
    total_motion_a: float
    early_motion_a: float
    late_motion_a: float
    dose_weighted_sum: NDArray[np.float32]
    plain_sum: NDArray[np.float32]
    patch_field: PatchField | None
    defects: DefectMap | None
    iterations: int
    converged: bool = True
    residual_px: float = 0.0
    patches_used: tuple[int, int] | None = None
    patch_note: str | None = None

    @property
    def shifts_a(self) -> NDArray[np.float64]:
        """``shifts_px`` in Å, (n, 2) float64."""
        return self.shifts_px * self.pixel_size_a

    @property
    def n_frames(self) -> int:
        return int(self.shifts_px.shape[0])


def motion_lengths_a(
    shifts_px: NDArray[np.float64],
    *,
    pixel_size_a: float,
    dose_per_frame_e_per_a2: float,
    pre_exposure_e_per_a2: float,
    early_exposure_e_per_a2: float,
) -> tuple[float, float, float]:
    """Total, early and late path length (Å) of a (n, 2) px trajectory."""
    steps = np.linalg.norm(np.diff(shifts_px, axis=0), axis=1) * pixel_size_a
    end_exposure = pre_exposure_e_per_a2 + np.arange(2, shifts_px.shape[0] + 1) * (
        dose_per_frame_e_per_a2
    )
    early = end_exposure <= early_exposure_e_per_a2
    return float(steps.sum()), float(steps[early].sum()), float(steps[~early].sum())
